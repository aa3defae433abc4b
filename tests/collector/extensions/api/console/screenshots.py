"""Screenshots of every console page for docs/console.md: ``make console-screenshots`` (writes docs/console/*.png).

The collector is the console tests' scene (tests.collector.extensions.api.console.scene)
with genai_cost added, so costs show; a few calls through the proxy fill the
live tail. Each page is taken at 1280 px, and the main ones at a phone's width.

    python -m tests.collector.extensions.api.console.screenshots docs/console
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import openai

from tests.collector.extensions.api.console.browser import DESKTOP, PHONE, chromium, new_context, open_page
from tests.collector.extensions.api.console.scene import PIPELINE, Scene, running_scene
from tests.collector.extensions.api.world import Pipeline
from tests.data import agent_traces

SCREENSHOT_PIPELINE = Pipeline(
    processors=(("genai_cost", "{}"), *PIPELINE.processors),
    capture_content=PIPELINE.capture_content,
    workers=PIPELINE.workers,
)
WINDOW = "start=2025-06-02T10:00:00Z&end=2025-06-02T12:00:00Z"
LIVE_CALLS = ("What is our refund policy?", "Summarise ticket 4411.", "Draft a reply to the customer.")
SETTLE_MS = 400  # charts finish their first layout after the data is in


def pages(scene: Scene) -> list[tuple[str, str, bool]]:
    """(file name, path, also at phone width) of every page shown in docs/console.md."""
    (loop,) = agent_traces.recording("loop_repeated_tool_call").trace_ids
    (conversation,) = agent_traces.recording("healthy_conversation").conversation_ids
    return [
        ("overview", f"/?{WINDOW}", True),
        ("traces", f"/traces?{WINDOW}", True),
        ("trace", f"/traces/{scene.script_trace}", True),
        ("trace-agent", f"/traces/{loop}", False),
        ("agent-graph", f"/traces/{loop}/graph", True),
        ("conversations", "/conversations?start=2025-06-02T00:00:00Z&end=2025-06-04T00:00:00Z", False),
        ("conversation", f"/conversations/{conversation}?start=2025-06-02T00:00:00Z&end=2025-06-04T00:00:00Z", False),
        ("findings", "/findings?range=30d", False),
        ("empty", "/traces?start=2025-06-01T00:00:00Z&end=2025-06-01T01:00:00Z", False),
        ("key", "/key", False),
    ]


def take(scene: Scene, out: Path) -> list[Path]:
    made = []
    with chromium() as browser:
        for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
            context = new_context(browser, scene.world.keys["admin"], viewport, time_zone="UTC")
            page = context.new_page()
            for name, path, phone in pages(scene):
                if suffix and not phone:
                    continue
                open_page(page, scene.world.base_url + path)
                page.wait_for_timeout(SETTLE_MS)
                target = out / f"{name}{suffix}.png"
                page.screenshot(path=str(target))
                made.append(target)
            if not suffix:
                open_page(page, scene.world.base_url + "/live")
                page.wait_for_selector(".live-status[data-connected=true]")
                client = openai.OpenAI(
                    base_url=f"http://127.0.0.1:{scene.world.proxy_port}/v1",
                    api_key=scene.world.proxy_keys["acme"],
                    max_retries=0,
                )
                for text in LIVE_CALLS:
                    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
                page.wait_for_selector(f".live-row.call >> nth={len(LIVE_CALLS) - 1}")
                target = out / "live.png"
                page.screenshot(path=str(target))
                made.append(target)
            context.close()
    return made


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="console-shots-") as root:
        for scene in running_scene(Path(root), SCREENSHOT_PIPELINE):
            for path in take(scene, out):
                print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
