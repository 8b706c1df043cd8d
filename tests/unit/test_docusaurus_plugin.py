"""clients/docusaurus-plugin-bookchat, run by node as Docusaurus would call it (the real build
with it is in tests/e2e/test_docusaurus_widget.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

PLUGIN = ROOT / "clients" / "docusaurus-plugin-bookchat"


def run_plugin(theme: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    if shutil.which("node") is None:
        pytest.fail("node is missing (the Docusaurus tests need it: .ci/docusaurus)")
    script = f"""
    const plugin = require({json.dumps(str(PLUGIN))});
    const context = {{siteConfig: {{themeConfig: {{bookchat: {json.dumps(theme)}}}}}}};
    try {{
      plugin.validateThemeConfig({{themeConfig: context.siteConfig.themeConfig}});
      const options = plugin.validateOptions({{options: {json.dumps(options)}}});
      console.log(JSON.stringify({{tags: plugin(context, options).injectHtmlTags().headTags}}));
    }} catch (error) {{
      console.log(JSON.stringify({{error: error.message}}));
    }}
    """
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_theme_config_and_plugin_options_become_two_head_tags() -> None:
    result = run_plugin(
        {"apiUrl": "https://chat.example.com/", "title": "Ask", "suggestedQuestions": ["a?"]},
        {"title": "Ask the manual", "widgetVersion": "0.2.0", "selectionButton": False},
    )
    config_tag, script_tag = result["tags"]
    assert script_tag == {
        "tagName": "script",
        "attributes": {"src": "https://chat.example.com/widget/0.2.0.js", "defer": True},
    }
    prefix = "window.BookchatConfig = "
    assert config_tag["innerHTML"].startswith(prefix)
    config = json.loads(config_tag["innerHTML"][len(prefix) :].rstrip(";"))
    assert config == {
        "apiUrl": "https://chat.example.com",
        "title": "Ask the manual",  # the plugin's own options win
        "suggestedQuestions": ["a?"],
        "selectionButton": "false",
    }


def test_inline_config_cannot_close_its_script_tag() -> None:
    result = run_plugin({"apiUrl": "https://chat.example.com", "title": "</script><b>x"}, {})
    assert "</script>" not in result["tags"][0]["innerHTML"]
    assert "\\u003c/script>" in result["tags"][0]["innerHTML"]


@pytest.mark.parametrize(
    ("theme", "options", "named"),
    [
        ({}, {}, "apiUrl"),
        ({"apiUrl": "chat.example.com"}, {}, "apiUrl"),
        ({"apiUrl": "https://c.example"}, {"suggestedQuestions": "a?"}, "suggestedQuestions"),
        ({"apiUrl": "https://c.example", "position": "top"}, {}, "position"),
        ({"apiUrl": "https://c.example"}, {"widgetVersion": "../x"}, "widgetVersion"),
    ],
)
def test_a_wrong_option_fails_naming_it(
    theme: dict[str, Any], options: dict[str, Any], named: str
) -> None:
    result = run_plugin(theme, options)
    assert "error" in result, result
    assert result["error"].startswith("docusaurus-plugin-bookchat: ")
    assert f"`{named}`" in result["error"]
