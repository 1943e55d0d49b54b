"""What the reader-study tests share: a tiny finished trial, the app served on a free local port, and a
reader's HTTP client with its own cookies."""

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar

import pytest

from spectrial.trials import trial
from spectrial.trials.verification import run_checks

from tests.trials.small_trial import small


def run_tiny_trial(folder, **changes):
    """The small trial (3 patients, 4 realizations: 12 cases with and 12 without the defect per arm) without
    its report and code verification, which have their own tests and take most of a small trial's time."""
    spec = small(**changes)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trial, "run_checks", lambda: run_checks(()))
        patch.setattr(trial.report, "build_report", lambda stage, **figures: None)
        trial.run_trial(spec, folder)
    return spec


class LiveServer:
    """The study app in a uvicorn server on a free port of 127.0.0.1, in a background thread."""

    def __init__(self, study):
        import uvicorn

        from spectrial.trials.study.app import create_app

        self.server = uvicorn.Server(uvicorn.Config(create_app(study), host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the study server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Client:
    """One browser-like HTTP client (its own cookie jar)."""

    def __init__(self, url):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(self, path, *, method="GET", payload=None, form=None, headers=None):
        headers = dict(headers or {})
        data = None
        if payload is not None:
            data, headers["Content-Type"] = json.dumps(payload).encode(), headers.get("Content-Type", "application/json")
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=20) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers

    def json(self, path, **kw):
        status, body, _ = self.request(path, **kw)
        return status, json.loads(body)

    def login(self, name):
        status, _, _ = self.request("/login", method="POST", form={"name": name})
        assert status == 200  # redirected to the reading page
        return self

    def answer(self, item, **answer):
        return self.json("/api/answer", method="POST", payload={"item": item, **answer})


def query(study, sql, *args):
    """Rows of a query on the study database, read directly (not through the package)."""
    db = sqlite3.connect(study / "study.sqlite")
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()
