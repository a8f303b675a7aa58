"""Render the built site in headless Chromium and fail if math or links are broken.

Serves ``docs/_build/html`` on localhost, renders the home page, one family page and one
annotated source page in the system's Chromium (Debian's ``chromium`` package: nothing is
downloaded), saves a screenshot of each, and fails when

* the mathematics did not render: a page whose source holds math has no ``mjx-container``
  element after MathJax ran, or raw TeX (``$...$``, ``\\(``, ``\\[``) is left in its visible
  text, or MathJax reported an error (``mjx-merror``);
* a link is broken: an internal ``href`` of a rendered page (or, with ``--all-pages``, of
  any page of the site) names a file that does not exist or an ``#anchor`` that the target
  page does not define.

Usage (after ``sphinx-build ... docs docs/_build/html``)::

    python docs/browser_check.py [--out DIR] [--family diffusion] [--annotated MODULE]

Exit status 0 when every check passes; the screenshots are written either way (default
``docs/_build/browser_check/``).
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SITE = DOCS / "_build" / "html"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]
# Text elements whose content is shown verbatim (code, shell sessions): $ and \( may appear.
VERBATIM = {"pre", "code", "script", "style", "kbd", "samp", "textarea", "mjx-container"}
RAW_TEX = re.compile(r"\\\(|\\\[|(?<![\w$])\$[^$\s][^$]*\$")


class _PageParser(html.parser.HTMLParser):
    """Collects a page's links, ids, math output elements and visible non-code text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.mjx = 0
        self.merror = 0
        self.math_sources = 0
        self.text: list[str] = []
        self._verbatim = 0
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        for key in ("id", "name"):
            if a.get(key) and (key == "id" or tag == "a"):
                self.ids.add(a[key] or "")
        if tag == "mjx-container":
            self.mjx += 1
        if tag == "mjx-merror":
            self.merror += 1
        if "math" in (a.get("class") or "").split():
            self.math_sources += 1
        if tag in {"br", "img", "meta", "link", "input", "hr", "wbr", "source"}:
            return  # void elements never close
        self._stack.append(tag)
        if tag in VERBATIM:
            self._verbatim += 1

    def handle_endtag(self, tag: str) -> None:
        if tag not in self._stack:
            return
        while self._stack:
            top = self._stack.pop()
            if top in VERBATIM:
                self._verbatim -= 1
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._verbatim:
            self.text.append(data)


def parse(markup: str) -> _PageParser:
    """Parse one HTML document."""
    parser = _PageParser()
    parser.feed(markup)
    parser.close()
    return parser


@functools.cache
def _ids_of(path: Path) -> frozenset[str]:
    return frozenset(parse(path.read_text(encoding="utf-8", errors="replace")).ids)


def broken_links(page: Path, links: list[str], site: Path) -> list[str]:
    """The internal links of ``page`` (a file under ``site``) whose target does not exist."""
    bad = []
    for href in links:
        parts = urllib.parse.urlsplit(href)
        if parts.scheme in ("http", "https") and parts.hostname not in ("127.0.0.1", "localhost"):
            continue  # an external link: not checked (the build machine has no network)
        if parts.scheme in ("mailto", "javascript", "data"):
            continue
        if parts.scheme in ("http", "https"):
            target = site / urllib.parse.unquote(parts.path).lstrip("/")
        elif parts.path:
            target = (page.parent / urllib.parse.unquote(parts.path)).resolve()
        else:
            target = page
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            bad.append(f"{href} (no file {target})")
            continue
        anchor = urllib.parse.unquote(parts.fragment)
        if anchor and target.suffix == ".html" and anchor not in _ids_of(target):
            bad.append(f"{href} (no #{anchor} in {target.relative_to(site)})")
    return bad


def render(chromium: str, url: str, screenshot: Path, profile: Path) -> str:
    """Load ``url`` in headless Chromium: save a screenshot, return the DOM after scripts ran."""
    common = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        # virtual time lets MathJax finish typesetting before the DOM is read
        "--virtual-time-budget=20000",
    ]
    subprocess.run(
        [*common, f"--screenshot={screenshot}", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [*common, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    )
    return dom.stdout


def check_page(chromium: str, base: str, rel: str, shot: Path, profile: Path) -> list[str]:
    """Render one page and return what is wrong with it (empty when it is fine)."""
    site_file = SITE / rel
    source = parse(site_file.read_text(encoding="utf-8"))
    dom = render(chromium, f"{base}/{rel}", shot, profile)
    rendered = parse(dom)
    problems = []
    if not shot.exists() or shot.stat().st_size == 0:
        problems.append("no screenshot was written")
    if source.math_sources and not rendered.mjx:
        problems.append(f"{source.math_sources} math elements but no mjx-container: no MathJax")
    if rendered.merror:
        problems.append(f"{rendered.merror} MathJax errors (mjx-merror)")
    text = " ".join(" ".join(rendered.text).split())
    for m in RAW_TEX.finditer(text):
        start = max(0, m.start() - 40)
        problems.append(f"raw TeX left in the text: ...{text[start : m.end() + 40]}...")
    problems += [f"broken link {b}" for b in broken_links(site_file, rendered.links, SITE)]
    print(
        f"{rel}: {rendered.mjx} rendered formulas (of {source.math_sources} in the source), "
        f"{len(rendered.links)} links, screenshot {shot}"
    )
    return problems


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        return None


def first_existing(candidates: list[str]) -> str:
    """The first of ``candidates`` (paths under the site) that was built."""
    for rel in candidates:
        if (SITE / rel).exists():
            return rel
    raise SystemExit(f"none of {candidates} was built under {SITE}")


def main(argv: list[str] | None = None) -> int:
    """Run the check; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SITE.parent / "browser_check")
    parser.add_argument("--family", default=None, help="family page (default: first built)")
    parser.add_argument("--annotated", default="genjax.gan.loss", help="module")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--all-pages", action="store_true", help="also check the links of every built page"
    )
    args = parser.parse_args(argv)
    if not SITE.exists():
        raise SystemExit(f"{SITE} does not exist: build the site first")
    families = [args.family] if args.family else ["diffusion", "counting", "mixture", "vae"]
    pages = [
        ("home", "index.html"),
        ("family", first_existing([f"families/{f}.html" for f in families])),
        ("annotated", first_existing([f"annotated/generated/{args.annotated}.html"])),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    problems: list[str] = []
    try:
        for name, rel in pages:
            with tempfile.TemporaryDirectory(prefix="genjax-chromium-") as profile:
                shot = args.out / f"{name}.png"
                found = check_page(args.chromium, base, rel, shot, Path(profile))
            problems += [f"{rel}: {p}" for p in found]
    finally:
        server.shutdown()
    if args.all_pages:
        for page in sorted(SITE.rglob("*.html")):
            links = parse(page.read_text(encoding="utf-8", errors="replace")).links
            rel = page.relative_to(SITE)
            problems += [f"{rel}: broken link {b}" for b in broken_links(page, links, SITE)]
    for p in problems:
        print("FAIL", p)
    print(f"browser check: {len(pages)} pages rendered, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
