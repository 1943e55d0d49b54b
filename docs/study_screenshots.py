"""Draw the README's screenshots of the reading app: ``python docs/study_screenshots.py STUDY [2AFC_STUDY]``.

Serves each study on a free local port, logs a reader in with headless chromium (Selenium and Debian's
chromedriver) and saves the training feedback and reading screens to docs/images/."""

import sys
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from spectrial.trials.study.app import create_app

IMAGES = Path(__file__).resolve().parent / "images"


def shoot(study, reader, shots, *, width=1100):
    server = uvicorn.Server(uvicorn.Config(create_app(study), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},640",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url + "/")
        driver.find_element("id", "name").send_keys(reader)
        driver.find_element("id", "login").click()

        def state(d):
            return d.find_element("tag name", "body").get_attribute("data-state")

        def images_loaded(d):
            return d.execute_script("return Array.from(document.querySelectorAll('#panels img'))"
                                    ".every(i => i.complete && i.naturalWidth > 0)")

        for click, name in shots:
            WebDriverWait(driver, 20).until(lambda d: state(d) and images_loaded(d))
            if click == "training":  # answer every training item, then show the first study screen
                while state(driver) != "study":
                    shots_before = driver.find_element("tag name", "body").get_attribute("data-item")
                    driver.find_element("id", "choice-left" if "2afc" in name else "score-3").click()
                    WebDriverWait(driver, 20).until(lambda d: state(d) == "feedback")
                    driver.find_element("id", "next").click()
                    WebDriverWait(driver, 20).until(lambda d: d.find_element("tag name", "body")
                                                    .get_attribute("data-item") != shots_before)
                    WebDriverWait(driver, 20).until(images_loaded)
                click = None
            if click:
                before = (state(driver), driver.find_element("tag name", "body").get_attribute("data-item"))
                driver.find_element("id", click).click()
                WebDriverWait(driver, 20).until(lambda d: (state(d), d.find_element("tag name", "body")
                                                           .get_attribute("data-item")) != before)
                WebDriverWait(driver, 20).until(images_loaded)
            if name:
                driver.save_screenshot(str(IMAGES / name))
                print(f"wrote {IMAGES / name}")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    shoot(sys.argv[1], "reader-2", [("score-4", "study-training-feedback.png"), ("next", None),
                                    ("training", "study-reading.png")])
    if len(sys.argv) > 2:
        shoot(sys.argv[2], "reader-2", [("training", "study-2afc.png")], width=1400)
