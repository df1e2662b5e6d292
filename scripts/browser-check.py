#!/usr/bin/python3
"""Opens pages in Debian's headless Chromium with the network off, checks what their scripts drew, saves screenshots.

  browser-check.py --screenshots DIR PAGE.html EXPECTATION... [-- PAGE.html EXPECTATION...]

An expectation is a CSS selector with an optional count: 'svg rect' (at least one), 'g.trace>=2', 'div.error=0',
'!script[src]' (none). An option placed before a page applies to it alone:
  --allow-failed-requests REGEX   requests whose URL matches may fail (nbconvert's page asks for MathJax, which Debian
                                  does not install with it; the stock kernel's bootstrap asks for its script and
                                  HTTP API, which a static page cannot reach); every other
                                  request must succeed.
Every page must load without uncaught script errors or console errors. The network is checked to be off first: an
https request to the NuGet registry (reachable from CI) must fail. Chromium speaks the DevTools protocol over a pipe
(--remote-debugging-pipe), so no port is opened. Exit 1 when anything fails.
"""
import base64, json, os, re, select, shutil, subprocess, sys, time

OFFLINE_PROBE = "https://api.nuget.org/v3/index.json"
SHOT_WIDTH = 1280
# Belt and braces: inside an unshared network namespace nothing is reachable anyway; without one, a dead proxy and a
# resolver that knows no host keep Chromium off the network.
OFFLINE_FLAGS = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost"]


class Browser:
    def __init__(self):
        chromium = shutil.which("chromium") or sys.exit("browser-check: chromium is not installed (scripts/install-notebook-client.sh)")
        self.to_browser_r, self.to_browser_w = os.pipe()
        self.from_browser_r, self.from_browser_w = os.pipe()
        flags = ["--headless", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
                 "--hide-scrollbars", "--allow-file-access-from-files", "--user-data-dir=" + os.environ["VRFT_BROWSER_PROFILE"],
                 *OFFLINE_FLAGS]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")   # Chromium refuses to run as root with its sandbox

        def pipes():   # DevTools reads commands on fd 3 and writes replies on fd 4
            for source, target in ((self.to_browser_r, 3), (self.from_browser_w, 4)):
                if source != target:
                    os.dup2(source, target)
                os.set_inheritable(target, True)

        self.proc = subprocess.Popen([chromium, *flags, "about:blank"], preexec_fn=pipes, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=open(os.environ.get("VRFT_BROWSER_LOG", os.devnull), "w"))
        os.close(self.to_browser_r)
        os.close(self.from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        # the tab Chromium opened: a tab made with Target.createTarget stays in the background and never fires its load event
        target = next(t["targetId"] for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable", session=True)

    def send(self, method, session=False, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self.to_browser_w, json.dumps(message).encode() + b"\0")
        return self.next_id

    def receive(self, deadline):
        while b"\0" not in self.buffer:
            if not select.select([self.from_browser_r], [], [], max(0.0, deadline - time.time()))[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_browser_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, session=False, timeout=60, **params):
        wanted = self.send(method, session, **params)
        deadline = time.time() + timeout
        while True:
            message = self.receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method, timeout):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            try:
                self.events.append(self.receive(deadline))
            except TimeoutError:
                return None

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def close(self):
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


def parse_expectation(text):
    if text.startswith("!"):
        return text[1:].strip(), "=", 0
    m = re.fullmatch(r"(.+?)\s*(>=|=)\s*(\d+)", text)
    return (m.group(1).strip(), m.group(2), int(m.group(3))) if m else (text.strip(), ">=", 1)


def check_page(browser, page, expectations, allowed_failures, screenshots):
    url = "file://" + os.path.abspath(page)
    browser.events.clear()
    started = time.time()
    # The page loads, draws and is measured at the width it is shot at: Chromium's default window is 780 px wide, where
    # text wraps more, so a height measured there and shot at 1280 px ended in thousands of pixels of blank page.
    browser.call("Emulation.setDeviceMetricsOverride", session=True, width=SHOT_WIDTH, height=800, deviceScaleFactor=1, mobile=False)
    browser.call("Page.navigate", session=True, url=url)
    if browser.wait_for("Page.loadEventFired", timeout=120) is None:
        return [f"{page}: did not finish loading in 120 s"]
    parsed = [parse_expectation(e) for e in expectations]
    counts = {}
    # plotly draws after load, asynchronously: poll until every expectation holds or 20 s have passed
    for _ in range(40):
        counts = browser.evaluate("(" + json.dumps([s for s, _, _ in parsed]) + ").map(s => document.querySelectorAll(s).length)")
        if all((c >= n if op == ">=" else c == n) for (_, op, n), c in zip(parsed, counts)):
            break
        time.sleep(0.5)
    time.sleep(0.5)   # let late console messages arrive
    try:
        while True:
            browser.events.append(browser.receive(time.time() + 0.2))
    except TimeoutError:
        pass

    failures = []
    requests = {}
    for e in browser.events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            failures.append(f"{page}: script error: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") == "error":
            failures.append(f"{page}: console error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Network.requestWillBeSent":
            requests[p["requestId"]] = p["request"]["url"]
        elif method == "Network.loadingFailed":
            failed = requests.get(p["requestId"], "?")
            if not (allowed_failures and allowed_failures.search(failed)):
                failures.append(f"{page}: request failed: {failed} ({p.get('errorText')})")
    for (selector, op, n), count in zip(parsed, counts):
        ok = count >= n if op == ">=" else count == n
        print(f"  {'ok ' if ok else 'FAIL'} {selector!r}: {count} (expected {op} {n})")
        if not ok:
            failures.append(f"{page}: {selector!r} matched {count}, expected {op} {n}")

    metrics = browser.call("Page.getLayoutMetrics", session=True)
    height = min(int(metrics["cssContentSize"]["height"]) + 1, 20000)
    browser.call("Emulation.setDeviceMetricsOverride", session=True, width=SHOT_WIDTH, height=height, deviceScaleFactor=1, mobile=False)
    shot = browser.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True)
    os.makedirs(screenshots, exist_ok=True)
    png = os.path.join(screenshots, os.path.splitext(os.path.basename(page))[0] + ".png")
    with open(png, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    browser.call("Emulation.clearDeviceMetricsOverride", session=True)
    print(f"  screenshot {png} ({SHOT_WIDTH}x{height}), {time.time() - started:.1f} s")
    return failures


def main(argv):
    if len(argv) < 3 or argv[0] != "--screenshots":
        sys.exit(__doc__)
    screenshots, rest = argv[1], argv[2:]
    pages, allowed, args = [], None, iter(rest)
    for arg in args:
        if arg == "--":
            continue
        if arg == "--allow-failed-requests":
            allowed = re.compile(next(args))
        elif arg.endswith(".html") and not arg.startswith("!"):
            pages.append((arg, [], allowed))
            allowed = None
        elif pages:
            pages[-1][1].append(arg)
        else:
            sys.exit(f"browser-check: expectation {arg!r} before any page")

    browser = Browser()
    try:
        probe = browser.call("Page.navigate", session=True, url=OFFLINE_PROBE)
        if not probe.get("errorText"):
            print(f"browser-check: the network is not off: {OFFLINE_PROBE} loaded")
            return 1
        print(f"network off: {OFFLINE_PROBE} -> {probe['errorText']}")
        failures = []
        for page, expectations, allow in pages:
            print(page)
            failures += check_page(browser, page, expectations, allow, screenshots)
    finally:
        browser.close()
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
