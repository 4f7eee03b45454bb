"""The list checker (python -m nkclass.rules.lint) and the organisation
labels of [[service]] entries."""

from __future__ import annotations

import re
import textwrap

import pytest

from nkclass import RuleError, load_rules
from nkclass.rules import builtin_paths, rules_from_text
from nkclass.rules.lint import lint_files, main


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_builtin_files_pass_the_list_checker(capsys):
    assert lint_files(builtin_paths()) == []
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("ok: 2 file(s)")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["a.com"]\n', 1,
         r"\[\[domain\]\] a: no source"),
        ('[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["co.uk"]\nsource = "s"\n', 1,
         "'co.uk' .* public suffix"),
        ('[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["com"]\nsource = "s"\n', 1,
         "'com' .* public suffix"),
        ('[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["a.com", "x.a.com"]\n'
         'source = "s"\n', 1, "'x.a.com' is redundant"),
        ('[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["a.com"]\nsource = "s"\n\n'
         '[[domain]]\nservice = "b"\ncategory = "email"\nsuffixes = ["mail.a.com"]\nsource = "s"\n',
         7, r"'mail.a.com' \(b\) lies under 'a.com' \(a, .*\); declare narrows"),
        ('[[domain]]\nservice = "b"\ncategory = "email"\nsuffixes = ["b.com"]\nnarrows = ["a"]\n'
         'source = "s"\n', 1, "b declares narrows 'a', but none of its suffixes"),
        ('[[service]]\nname = "a"\norg = "o"\ncountry = "US"\nsource = "s"\n\n'
         '[[service]]\nname = "b"\norg = "o"\ncountry = "CN"\nsource = "s"\n', 7,
         "service b places organisation o in CN, a .* in US"),
    ],
)
def test_the_checker_names_each_problem_with_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "list.toml", text)
    problems = lint_files([path])
    assert len(problems) == 1, problems
    assert (problems[0].origin.path, problems[0].origin.line) == (str(path), line)
    assert re.search(message, problems[0].message), problems[0].message


def test_a_declared_narrowing_passes(tmp_path):
    path = write(tmp_path, "list.toml", '''
        [[domain]]
        service = "a"
        category = "social"
        suffixes = ["a.com"]
        source = "s"

        [[domain]]
        service = "b"
        category = "email"
        suffixes = ["mail.a.com"]
        narrows = ["a"]
        source = "s"
    ''')
    assert lint_files([path]) == []


def test_a_suffix_or_as_number_in_two_files_is_a_duplicate(tmp_path, capsys):
    one = write(tmp_path, "one.toml", '''
        [[domain]]
        service = "a"
        category = "social"
        suffixes = ["a.com"]
        source = "s"

        [[asn]]
        service = "a"
        org = "A"
        asns = [64500]
        source = "s"
    ''')
    two = write(tmp_path, "two.toml", '''
        [[domain]]
        service = "b"
        category = "social"
        suffixes = ["a.com"]
        source = "s"

        [[asn]]
        service = "b"
        org = "B"
        asns = [64500]
        source = "s"
    ''')
    messages = [p.message for p in lint_files([one, two])]
    assert messages == [f"'a.com' (b) is also listed by a ({one}:2)",
                        f"AS64500 (b) is also listed by a ({one}:8)"]
    assert main([str(one), str(two)]) == 1
    assert "2 problem(s) in 2 file(s)" in capsys.readouterr().err


def test_a_file_that_does_not_parse_is_an_error_not_a_finding(tmp_path, capsys):
    path = write(tmp_path, "bad.toml", '[[domain]]\nservice = "a"\n')
    assert main([str(path)]) == 2
    assert f"{path}:1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["a.com"]\nnarrows = ["a"]\n',
         5, "not another service's name"),
        ('[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["a.com"]\nnarrows = "b"\n',
         5, "expected list"),
        ('[[service]]\nname = "facebook"\norg = "Meta Platforms"\n', 3, "org label"),
    ],
)
def test_bad_narrows_and_org_values_are_rule_errors(tmp_path, text, line, message):
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(RuleError, match=message) as info:
        load_rules(path, defaults=False)
    assert (info.value.path, info.value.line) == (str(path), line)


def test_organisations_group_services_and_lend_their_country():
    rules = load_rules()
    orgs = rules.organisations()
    assert {s for s, o in orgs.items() if o == "google"} >= {
        "google", "youtube", "gmail", "google-apis", "google-ads", "google-play"}
    assert orgs["douyin"] == orgs["tiktok"] == "bytedance"
    assert orgs["torproject"] == "torproject"
    assert orgs["supportxmr"] == "supportxmr"  # no [[service]] entry: its own organisation
    countries = rules.countries()
    assert countries["wechat"] == countries["bilibili"] == countries["wangsu"] == "CN"
    assert countries["google-apis"] == countries["akamai"] == "US"
    assert "supportxmr" not in countries
    layered = rules_from_text('''
        [[domain]]
        service = "gvideo"
        category = "streaming"
        suffixes = ["gvideo.example"]
        source = "s"

        [[service]]
        name = "gvideo"
        org = "google"
        source = "s"
    ''')
    assert layered.countries()["gvideo"] == "US"  # from the organisation


def longest_suffix_service(rules, host):
    """Reference for the native longest-suffix match on label boundaries."""
    owner = {s: d.service for d in rules.domains for s in d.suffixes}
    labels = host.split(".")
    return next((owner[".".join(labels[i:])] for i in range(len(labels))
                 if ".".join(labels[i:]) in owner), None)


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("safebrowsing.googleapis.com", "google-apis"),
        ("youtubei.googleapis.com", "youtube"),
        ("yt3.ggpht.com", "youtube"),
        ("mtalk.google.com", "google-push"),
        ("play.googleapis.com", "google-play"),
        ("ocsp.pki.goog", "google-trust-services"),
        ("login.microsoftonline.com", "microsoft"),
        ("outlook.office365.com", "outlook"),
        ("v10.events.data.microsoft.com", "microsoft-telemetry"),
        ("tlu.dl.delivery.mp.microsoft.com", "windows-update"),
        ("2-courier.push.apple.com", "apple-push"),
        ("mesu.apple.com", "apple-update"),
        ("aweme.snssdk.com", "bytedance"),
        ("p3.douyinpic.com", "douyin"),
        ("api.bilibili.com", "bilibili"),
        ("upos-sz-mirrorkodo.bilivideo.com", "bilibili"),
        ("wx.qlogo.cn", "qq"),
        ("g.alicdn.com", "alibaba"),
        ("e1234.dscb.akamaiedge.net", "akamai"),
        ("d111111abcdef8.cloudfront.net", "cloudfront"),
        ("www.yahoo.co.jp", "yahoo-japan"),
        ("versioncheck-bg.addons.mozilla.org", "mozilla"),
        ("tx2.a.kwimg.kwaicdn.com", "kuaishou"),
        ("galaxystore.samsungapps.com", "samsung"),
        ("gateway.discord.gg", "discord"),
        ("steamcdn-a.akamaihd.net", "steam"),
        ("a1234.akamaihd.net", "akamai"),
        ("audio-ak-spotify-com.akamaized.net", "spotify"),
        ("dl.dropboxusercontent.com", "dropbox"),
        ("v10.vortex-win.data.microsoft.com", "microsoft-telemetry"),
        ("alt3-mtalk.google.com", "google-push"),
        ("pki.google.com", "google-trust-services"),
        ("db5.notify.live.net", "windows-push"),
        ("ppq.apple.com", "apple-app-store"),
        ("sun9-21.vkuserphoto.ru", "vk"),
        ("blzddist1-a.akamaihd.net", "blizzard"),
        ("lolstatic-a.akamaihd.net", "riotgames"),
        ("modules-cdn.eac-cdn.com", "epicgames"),
        ("r.r10s.jp", "rakuten"),
    ],
)
def test_the_default_lists_name_what_platform_clients_contact(host, service):
    assert longest_suffix_service(load_rules(), host) == service
