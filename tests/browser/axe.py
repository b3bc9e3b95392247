"""axe-core in the browser tests: inject the vendored engine (tests/browser/vendor/axe-core, pinned)
into the page Selenium shows, run it, and fail with a readable list of what it found.

The rules run are WCAG 2.0/2.1/2.2 level A and AA plus axe's best practices. A rule axe cannot decide
(e.g. contrast over a photo) is "incomplete", not a violation: only violations fail a test.
"""

from pathlib import Path

AXE_VERSION = "4.14.1"
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

RUN_AXE = """
const [context, options, done] = arguments;
axe.run(context || document, options).then(
  (result) => done({violations: result.violations}),
  (error) => done({error: String(error)}),
);
"""


def axe_violations(browser, context: dict | str | None = None) -> list[dict]:
    """axe's violations on the page as it is now (in `context`, an axe context, if given)."""
    if not browser.execute_script("return typeof window.axe === 'object'"):
        browser.execute_script(AXE_JS.read_text(encoding="utf-8"))
        loaded = browser.execute_script("return window.axe && window.axe.version")
        assert loaded == AXE_VERSION, f"axe-core {loaded!r} injected, expected {AXE_VERSION}"
    browser.set_script_timeout(120)  # a 2-core machine shared with others
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    answer = browser.execute_async_script(RUN_AXE, context, options)
    assert "error" not in answer, f"axe-core failed to run: {answer['error']}"
    return answer["violations"]


def violations_text(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']} [{violation['helpUrl']}]"
        )
        for node in violation["nodes"][:8]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {' '.join(map(str, node['target']))}: {summary[:300]}")
        if len(violation["nodes"]) > 8:
            lines.append(f"    … and {len(violation['nodes']) - 8} more")
    return "\n".join(lines)


def assert_accessible(browser, context: dict | str | None = None) -> None:
    """Fails with axe's findings when the page (or `context`) has any violation."""
    violations = axe_violations(browser, context)
    assert not violations, f"axe-core found {len(violations)} violation(s) on {browser.current_url}:\n" + (
        violations_text(violations)
    )
