"""[[service]] entries: who runs a named service and from which country."""

from __future__ import annotations

import pickle
import textwrap

import pytest

from nkclass import RuleError, load_rules
from nkclass.rules import rules_from_text


def test_default_ruleset_describes_the_demo_services_with_sources():
    from nkclass.demo.world import SERVICES

    rules = load_rules()
    described = {info.name: info for info in rules.service_info}
    assert described["facebook"].country == "US" and described["baidu"].country == "CN"
    assert described["facebook"].operator == "Meta Platforms, Inc."
    for info in rules.service_info:
        assert info.source.startswith("https://"), info
        assert info.name in rules.services
    named = set(rules.services)
    # every demo service the ruleset names, except those with no public operator seat
    unplaced = {"binance", "supportxmr", "minexmr", "moneroocean", "openbittorrent"}
    assert {s for s in SERVICES if s in named} - set(described) == unplaced


def test_service_entries_layer_like_the_rest(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[service]]\nname = "facebook"\noperator = "Somebody"\ncountry = "IE"\n')
    rules = load_rules(path)
    assert rules.about("facebook").country == "IE"
    assert rules.about("baidu").country == "CN"
    assert rules.about("nosuch") is None
    assert pickle.loads(pickle.dumps(rules)) == rules


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[service]]\nname = "facebook"\ncountry = "usa"\n', 3, "ISO 3166-1 alpha-2"),
        ('[[service]]\nname = "Face Book"\n', 2, "must be lowercase"),
        ('[[service]]\ncountry = "US"\n', 1, "missing required key 'name'"),
        ('[[service]]\nname = "facebook"\nowner = "x"\n', 3, "unknown key 'owner'"),
        ('[[service]]\nname = "qq"\n\n[[service]]\nname = "qq"\n', 5, "already described"),
        ('[[service]]\nname = "facebok"\n', 1, "did you mean 'facebook'?"),
    ],
)
def test_bad_service_entries_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(RuleError, match=message) as info:
        load_rules(path)
    assert (info.value.path, info.value.line) == (str(path), line)


def test_rules_from_text_checks_service_entries_too():
    with pytest.raises(RuleError, match="no \\[\\[network\\]\\] or \\[\\[domain\\]\\] rule"):
        rules_from_text('[[service]]\nname = "nowhere"\n')
