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
    const context = {{siteConfig: {{
      url: 'https://lumen.example.org', baseUrl: '/lumen/',
      themeConfig: {{bookchat: {json.dumps(theme)}}},
    }}}};
    try {{
      plugin.validateThemeConfig({{themeConfig: context.siteConfig.themeConfig}});
      const given = {{id: 'default', ...{json.dumps(options)}}};
      const options = plugin.validateOptions({{options: given}});
      console.log(JSON.stringify({{tags: plugin(context, options).injectHtmlTags().headTags}}));
    }} catch (error) {{
      console.log(JSON.stringify({{error: error.message}}));
    }}
    """
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_theme_config_and_plugin_options_become_one_script_tag_without_inline_code() -> None:
    result = run_plugin(
        {"apiUrl": "https://chat.example.com/", "title": "Ask", "suggestedQuestions": ["a?"]},
        {"title": "Ask the manual", "widgetVersion": "0.2.0", "selectionButton": False},
    )
    [script_tag] = result["tags"]  # no inline script: a strict CSP needs no exception
    assert "innerHTML" not in script_tag
    attributes = script_tag["attributes"]
    assert attributes["src"] == "https://chat.example.com/widget/0.2.0.js"
    assert attributes["defer"] is True
    assert json.loads(attributes["data-config"]) == {
        "apiUrl": "https://chat.example.com",
        "title": "Ask the manual",  # the plugin's own options win
        "suggestedQuestions": ["a?"],
        "selectionButton": "false",
        # the site's url + baseUrl: citations under it open on the origin serving the site
        "siteUrl": "https://lumen.example.org/lumen/",
    }


def test_an_explicit_site_url_wins_over_the_config_url() -> None:
    result = run_plugin({"apiUrl": "https://c.example", "siteUrl": "https://docs.example/"}, {})
    config = json.loads(result["tags"][0]["attributes"]["data-config"])
    assert config["siteUrl"] == "https://docs.example/"


@pytest.mark.parametrize(
    ("misspelled", "nearest"),
    [("shortcutt", "shortcut"), ("sugestedQuestions", "suggestedQuestions"), ("apiURL", "apiUrl")],
)
def test_an_unknown_option_fails_naming_the_nearest_known_one(
    misspelled: str, nearest: str
) -> None:
    for theme, options in [
        ({"apiUrl": "https://c.example", misspelled: "x"}, {}),
        ({"apiUrl": "https://c.example"}, {misspelled: "x"}),
    ]:
        result = run_plugin(theme, options)
        assert "error" in result, result
        assert f"unknown option `{misspelled}`. Did you mean `{nearest}`?" in result["error"]


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
