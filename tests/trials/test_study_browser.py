"""The reading app driven in a real headless browser (Debian's chromium through Selenium and its
chromedriver): training with truth shown afterwards, a 10-case study stopped halfway and resumed, a second
tab, and a second reader at the same time. Skipped where chromium, chromedriver or Selenium is missing."""

import shutil

import pytest

from spectrial.trials.mrmcfiles import read_imrmc
from spectrial.trials.study import create_study, export_study, reading_order

from tests.trials.study_helpers import LiveServer, query, run_tiny_trial

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("uvicorn")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                       "chromium-driver)")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    trial_dir = tmp_path_factory.mktemp("trial") / "results"
    run_tiny_trial(trial_dir)
    out = tmp_path_factory.mktemp("study") / "study"
    create_study(trial_dir, out, n_cases=10, doses=[0.25], methods=["none"], n_training=2, seed=21)
    return out


def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def body(driver, name):
    return driver.find_element("tag name", "body").get_attribute(f"data-{name}")


def wait(driver, condition, message):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # A page that is being replaced (after a log-in or a click) can detach an element between finding it
    # and reading it: the condition is then asked again, not failed.
    WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)


def log_in(driver, url, name):
    driver.get(url + "/")
    driver.find_element("id", "name").send_keys(name)
    driver.find_element("id", "login").click()
    wait(driver, lambda d: body(d, "state") in ("training", "study", "done"), "the reading screen did not load")
    wait(driver, lambda d: d.execute_script("return Array.from(document.querySelectorAll('#panels img'))"
                                            ".every(i => i.complete && i.naturalWidth === 160)"), "images missing")


def rate(driver, score) -> int:
    """Click a score on the current screen; returns the item answered once the app has moved on."""
    item, phase = body(driver, "item"), body(driver, "state")
    driver.find_element("id", f"score-{score}").click()
    if phase == "training":
        wait(driver, lambda d: d.find_element("id", "feedback").is_displayed(), "no feedback after a training case")
    else:
        wait(driver, lambda d: body(d, "item") != item or body(d, "state") == "done", "the next case did not load")
    return int(item)


def truth_of(study, item):
    return query(study, "SELECT c.truth FROM item_cases ic JOIN cases c ON c.id = ic.case_id WHERE ic.item_id = ?",
                 item)[0][0]


def test_a_reader_trains_reads_stops_resumes_in_two_tabs_beside_another_reader(study):
    with LiveServer(study) as server:
        alice, bob = browser(), browser()
        try:
            clicked = {"alice": {}, "bob": {}}
            log_in(alice, server.url, "alice")
            log_in(bob, server.url, "bob")
            for _ in range(2):  # training: the truth appears only after the answer
                assert not alice.find_element("id", "feedback").is_displayed()
                item = rate(alice, 2)
                clicked["alice"][item] = 2
                expected = "Defect PRESENT" if truth_of(study, item) else "NO defect"
                assert expected in alice.find_element("id", "truth").text
                alice.find_element("id", "next").click()
                wait(alice, lambda d: body(d, "item") != str(item), "the next case did not load")
            assert body(alice, "state") == "study"
            for k in range(5):  # half the study, while bob reads his training cases and first study case
                clicked["alice"][rate(alice, 1 + k % 5)] = 1 + k % 5
                if k < 3:
                    clicked["bob"][rate(bob, 5 - k)] = 5 - k
                    if body(bob, "state") == "feedback":
                        bob.find_element("id", "next").click()
                        wait(bob, lambda d: body(d, "state") != "feedback", "bob's next case did not load")
            assert "case 6 of 10" in alice.find_element("id", "progress").text
            alice.find_element("id", "stop").click()
            wait(alice, lambda d: "Stopped" in d.page_source, "no confirmation of stopping")
            log_in(alice, server.url, "alice")  # resumes at the sixth study case
            assert body(alice, "state") == "study"
            assert "case 6 of 10" in alice.find_element("id", "progress").text
            # A second tab shows the same case; answering it there makes the first tab's answer a refusal.
            first_tab = alice.current_window_handle
            alice.switch_to.new_window("tab")
            alice.get(server.url + "/read")
            wait(alice, lambda d: body(d, "state") == "study", "the second tab did not load")
            item = body(alice, "item")
            clicked["alice"][rate(alice, 4)] = 4
            alice.close()
            alice.switch_to.window(first_tab)
            assert body(alice, "item") == item
            alice.find_element("id", "score-1").click()
            wait(alice, lambda d: body(d, "item") != item, "the first tab did not move on")
            assert "answered already" in alice.find_element("id", "status").text
            while body(alice, "state") != "done":
                item = rate(alice, 3)
                clicked["alice"][item] = 3
            assert "10 of 10" in alice.find_element("id", "progress").text
            screens = {"alice": [int(i) for i in clicked["alice"]]}
        finally:
            alice.quit()
            bob.quit()

    def stored(name):
        return dict(query(study, "SELECT a.item_id, a.score FROM ratings a JOIN readers r ON r.id = a.reader_id "
                                 "WHERE r.name = ?", name))

    # Exactly one answer per case (2 training + 10 study), each the score clicked, in the designed order.
    items = [i for (i,) in query(study, "SELECT id FROM items ORDER BY id")]
    assert sorted(stored("alice")) == items
    assert stored("alice") == {i: float(s) for i, s in clicked["alice"].items()}
    training = [i for (i,) in query(study, "SELECT id FROM items WHERE training = 1")]
    assert screens["alice"] == reading_order(21, "alice", training, [i for i in items if i not in training])
    assert stored("bob") == {i: float(s) for i, s in clicked["bob"].items()}
    # The export holds alice's study ratings (bob has not finished) and reads back to them.
    exported = read_imrmc(export_study(study, format="imrmc"))
    labels = dict(query(study, "SELECT ic.item_id, c.label FROM item_cases ic JOIN cases c ON c.id = ic.case_id "
                               "JOIN items i ON i.id = ic.item_id WHERE i.training = 0"))
    assert exported.readers == ("alice",)
    assert dict(zip(exported.cases, exported.scores[0, 0])) == {labels[i]: float(clicked["alice"][i]) for i in labels}
