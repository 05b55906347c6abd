"""Every committed notebook opened in JupyterLab in a real browser (headless Chromium), as a student opens it.

The server runs on localhost with the project as its root, a settings folder that renders every cell (no windowing,
so that every output is in the page) and its own Jupyter data folder in which the notebooks are trusted, as
``make setup`` trusts them (JupyterLab strips embedded audio from untrusted notebooks).  For each notebook the test
fails on: a cell whose committed outputs render as an empty output area, an output JupyterLab cannot render, a
traceback, an audio element that does not load, a frozen progress bar or a machine's path in the outputs, and a
notebook that opens modified (its tab marked dirty).  Screenshots are kept under ``runs/browser/`` (CI keeps them
as artifacts).

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/setup.sh --browser``, run by ``make test``) and
Selenium; skips with the reason where they are missing, except under CI, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mtlnb.core.paths import PROJECT_ROOT, runs_root
from mtlnb.reproduce import notebooks

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = runs_root() / "browser"
TOKEN = "mtlnb-browser-test"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401  (only whether it is installed)
    except ImportError:
        return "selenium is not installed (pip install -e .[test])"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found (bash scripts/setup.sh --browser installs Debian's chromium and chromium-driver)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = home / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))  # no pop-up
    env = dict(os.environ, JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    bin_dir = Path(sys.executable).parent
    if not os.environ.get("NOTRUST"): subprocess.run([str(bin_dir / "jupyter"), "trust", *map(str, notebooks())], env=env, check=True,
                   capture_output=True)
    port = _free_port()
    log = open(home / "lab.log", "w")
    server = subprocess.Popen([str(bin_dir / "jupyter"), "lab", "--no-browser", f"--port={port}",
                               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
                               f"--ServerApp.root_dir={PROJECT_ROOT}", "--ServerApp.open_browser=False",
                               *(["--allow-root"] if os.geteuid() == 0 else [])],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start; its log: {home / 'lab.log'}")
            time.sleep(0.5)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver, url
    finally:
        driver.quit()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# Run in the page: what the rendered notebook shows, cell by cell.
_INSPECT = """
const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')];
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
const tab = document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current');
const kernel = panel ? panel.querySelector('.jp-Notebook-ExecutionIndicator') : null;
return {
  kernel: kernel ? kernel.getAttribute('data-status') : null,
  cells: cells.map(c => ({
    code: c.classList.contains('jp-CodeCell'),
    outputs: c.querySelectorAll('.jp-OutputArea-output').length,
    text: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText).join('\\n'),
  })),
  audio: [...(panel ? panel.querySelectorAll('audio') : [])].length,
  dirty: tab ? tab.classList.contains('jp-mod-dirty') : null,
};
"""

# Run in the page (asynchronously): load every audio element and report its duration, or why it cannot play.
_AUDIO = """
const done = arguments[arguments.length - 1];
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
const players = [...panel.querySelectorAll('audio')];
Promise.all(players.map(a => new Promise(resolve => {
  const src = a.currentSrc || a.src || (a.querySelector('source') || {}).src || '';
  if (!src) { resolve('no source'); return; }
  if (a.readyState >= 1 && a.duration > 0) { resolve(a.duration); return; }
  a.addEventListener('loadedmetadata', () => resolve(a.duration), {once: true});
  a.addEventListener('error', () => resolve('error ' + (a.error ? a.error.code : '?')), {once: true});
  setTimeout(() => resolve('timeout'), 20000);
  a.load();
}))).then(done);
"""


def _committed(path: Path) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return nb["cells"]


def _open(driver, url: str, path: Path, n_cells: int) -> dict:
    rel = path.relative_to(PROJECT_ROOT).as_posix()
    driver.get(f"{url}/lab/tree/{rel}?reset&token={TOKEN}")
    deadline = time.monotonic() + 90
    while True:
        state = driver.execute_script(_INSPECT)
        if len(state["cells"]) >= n_cells and state["dirty"] is not None and state["kernel"] == "idle":
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name}: in 90 s JupyterLab showed {len(state['cells'])} of {n_cells} cells, "
                                 f"kernel {state['kernel']}")
        time.sleep(0.5)
    time.sleep(2)  # the kernel is up and JupyterLab has settled: a notebook it rewrote is marked dirty by now
    return driver.execute_script(_INSPECT)


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_the_committed_notebook_renders_in_jupyterlab(lab, path):
    driver, url = lab
    cells = _committed(path)
    state = _open(driver, url, path, len(cells))
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{path.stem}.png"))
    problems = []
    for i, (cell, shown) in enumerate(zip(cells, state["cells"])):
        where = f"cell {i + 1}"
        if cell["cell_type"] == "code" and cell.get("outputs") and shown["outputs"] == 0:
            problems.append(f"{where}: {len(cell['outputs'])} committed outputs, an empty output area")
        text = shown["text"]
        for needle, what in (("Traceback (most recent call last)", "a traceback"),
                             ("No renderer could be found", "an output JupyterLab cannot render"),
                             ("PosixPath(", "a path result"), ("%|", "a frozen progress bar"),
                             ("/tmp/", "a machine's path"), ("/work/", "a machine's path")):
            if needle in text:
                problems.append(f"{where}: {what} ({text[max(0, text.index(needle) - 60):][:160]!r})")
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            problems.append(f"{where}: a committed error output")
    if state["dirty"]:
        problems.append("the notebook opens modified (its tab is marked dirty)")
    expected_audio = sum("<audio" in "".join(o.get("data", {}).get("text/html", []))
                         for c in cells for o in c.get("outputs", []))
    if state["audio"] != expected_audio:
        problems.append(f"{state['audio']} audio players shown, {expected_audio} committed")
    elif expected_audio:
        durations = driver.execute_async_script(_AUDIO)
        dead = [d for d in durations if not isinstance(d, (int, float)) or d <= 0]
        if dead:
            problems.append(f"audio players that do not load: {dead}")
    assert not problems, f"{path.name} in JupyterLab (screenshot {SHOTS / (path.stem + '.png')}):\n  " + \
        "\n  ".join(problems)
