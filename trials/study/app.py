"""``spectrial study serve``: the reading web app (Starlette, served by uvicorn).

A reader logs in by name (a session cookie, HttpOnly and SameSite=Strict, holds a random token), reads the
training items and then the study items in their own order, one screen at a time. The browser only ever
learns opaque item and image numbers; every answer goes to :meth:`.StudyDatabase.answer`, which commits it
before anything about the truth (training items only) is returned. The app serves no file from disk
except its own page, script and style, so no path outside the study can be requested; requests for truth,
for another reader's ratings or for images of items not yet on the reader's screen are refused.

The handlers call the database on the event loop: each call takes milliseconds, and one server process
thereby applies answers one at a time (SQLite's lock does the same across processes).
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
from importlib import resources

from spectrial.phantoms.errors import InvalidParameterError

from .database import StudyDatabase, StudyError, open_study
from .images import colour_bar_png

log = logging.getLogger(__name__)

COOKIE = "spectrial_study"
WEB_FILES = {"reader.js": "text/javascript", "reader.css": "text/css"}
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; "
                                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _web_text(name: str) -> str:
    return resources.files("spectrial.trials.study").joinpath("web", name).read_text(encoding="utf-8")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<link rel='stylesheet' href='/reader.css'></head><body>" + body + "</body></html>")


def create_app(study, *, allowed_hosts=("127.0.0.1", "localhost", "::1")):
    """The Starlette application serving the study folder ``study``.

    ``allowed_hosts``: the Host headers accepted (against DNS rebinding); the server's own host is added
    by :func:`serve`.
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

    database: StudyDatabase = study if isinstance(study, StudyDatabase) else open_study(study)
    meta = database.meta
    static = {name: _web_text(name) for name in WEB_FILES}
    reader_page = _web_text("reader.html")
    bar = colour_bar_png(tuple(meta["window_kbq_per_ml"]), meta["colour_scale"])

    def respond(response):
        response.headers.update(SECURITY_HEADERS)
        return response

    def error(message: str, status: int):
        return respond(JSONResponse({"error": message}, status_code=status))

    def reader_of(request: Request):
        return database.reader_for_token(request.cookies.get(COOKIE))

    def api(handler):
        async def endpoint(request: Request):
            reader = reader_of(request)
            if reader is None:
                return error("not logged in: open / and enter your name", 401)
            try:
                return respond(await handler(request, reader))
            except StudyError as refused:
                return error(str(refused), refused.status)
        return endpoint

    async def login_page(request: Request):
        if reader_of(request) is not None:
            return respond(RedirectResponse("/read", status_code=303))
        message = html.escape(request.query_params.get("message", ""))
        return respond(HTMLResponse(_page("Reader study", (
            "<main class='login'><h1>Reader study</h1>"
            f"<p>{'2AFC: pick the image with the perfusion defect' if meta['paradigm'] == '2afc' else 'Rate how confident you are that a perfusion defect is present'}"
            f" ({html.escape(meta['defect_name'])}).</p>"
            + (f"<p class='message'>{message}</p>" if message else "")
            + "<form method='post' action='/login'><label for='name'>Reader name</label> "
              "<input id='name' name='name' required maxlength='40' pattern='[A-Za-z0-9][A-Za-z0-9._\\-]*' "
              "autocomplete='username' autofocus> <button id='login' type='submit'>Start or resume</button></form>"
              "<p class='hint'>Use the same name to resume where you stopped.</p></main>"))))

    async def login(request: Request):
        form = await request.form()
        try:
            reader, token = database.login(str(form.get("name", "")).strip())
        except StudyError as refused:
            return respond(HTMLResponse(_page("Reader study", f"<main class='login'><p class='message'>"
                                              f"{html.escape(str(refused))}</p><p><a href='/'>Back</a></p></main>"),
                                        status_code=400))
        log.info("reader %s logged in (session %d)", reader.name, reader.session_id)
        response = RedirectResponse("/read", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return respond(response)

    async def read(request: Request):
        if reader_of(request) is None:
            return respond(RedirectResponse("/", status_code=303))
        return respond(HTMLResponse(reader_page))

    async def stop(request: Request):
        reader = reader_of(request)
        if reader is not None:
            database.stop(reader)
        response = RedirectResponse("/?message=" + "Stopped. Every answer is saved; enter the same name to resume.",
                                    status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return respond(response)

    def web_file(name: str):
        async def endpoint(request: Request):
            return respond(Response(static[name], media_type=WEB_FILES[name]))
        return Route(f"/{name}", endpoint)

    async def colour_bar(request: Request):
        return respond(Response(bar, media_type="image/png"))

    async def study_info(request, reader):
        return JSONResponse({"reader": reader.name, "paradigm": meta["paradigm"], "scale": meta["scale"],
                             "views": meta["views"], "window_kbq_per_ml": meta["window_kbq_per_ml"],
                             "defect": meta["defect_name"]})

    async def next_item(request, reader):
        return JSONResponse(database.next_item(reader))

    async def answer(request, reader):
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise StudyError("answers are sent as application/json", 415)
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise StudyError("the answer is not valid JSON", 400) from None
        if not isinstance(body, dict) or set(body) - {"item", "score", "choice"}:
            raise StudyError("an answer is {'item': N, 'score': S} or {'item': N, 'choice': 'left'|'right'}", 400)
        return JSONResponse(database.answer(reader, body.get("item"), score=body.get("score"),
                                            choice=body.get("choice")))

    async def progress(request, reader):
        return JSONResponse(database.progress(reader))

    async def own_ratings(request, reader):
        name = request.path_params.get("name", reader.name)
        if name != reader.name:
            raise StudyError("you can see only your own ratings", 403)
        return JSONResponse({"reader": reader.name, "ratings": database.own_ratings(reader)})

    async def image(request, reader):
        return Response(database.image_for(reader, request.path_params["image_id"]), media_type="image/png")

    routes = [
        Route("/", login_page), Route("/login", login, methods=["POST"]), Route("/read", read),
        Route("/stop", stop, methods=["POST"]),
        Route("/api/study", api(study_info)), Route("/api/next", api(next_item)),
        Route("/api/answer", api(answer), methods=["POST"]), Route("/api/progress", api(progress)),
        Route("/api/ratings", api(own_ratings)), Route("/api/readers/{name:str}/ratings", api(own_ratings)),
        Route("/api/images/{image_id:int}", api(image)), Route("/colour-bar.png", colour_bar),
    ]
    routes += [web_file(name) for name in WEB_FILES]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))])


def serve(study, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``study`` at http://host:port until interrupted (uvicorn); warns when bound beyond localhost."""
    try:
        import uvicorn
    except ImportError:
        raise InvalidParameterError("the reading app needs the 'study' extra: pip install 'spectrial[study]'") from None
    if not 0 < port < 65536:
        raise InvalidParameterError(f"--port={port} is not allowed: expected 1-65535")
    database = open_study(study)
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if not local:
        log.warning("the study is served on %s: anyone who can reach this address can log in as a reader", host)
    hosts = ["127.0.0.1", "localhost", "::1"] + ([host] if host not in ("0.0.0.0", "::") else ["*"])
    uvicorn.run(create_app(database, allowed_hosts=hosts), host=host, port=port, log_level="warning")
