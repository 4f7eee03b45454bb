"""Rulesets: the built-in default, file:line errors, layering."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

import nkclass
from nkclass import RuleError, load_rules
from nkclass.labels import ACTIVITIES, APPS
from nkclass.rules import builtin_paths, rules_from_text
from nkclass.rules.compile import compile_rules


def write(tmp_path: Path, text: str, name: str = "user.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_default_ruleset_watches_the_three_nk_paths():
    rules = load_rules()
    assert rules.paths == ("none", "kp_range", "unicom", "satgate")
    by_name = {w.name: w for w in rules.watched}
    assert by_name["kp_range"].prefixes == ("175.45.176.0/22",)
    assert by_name["kp_range"].confidence == "certain"
    assert by_name["unicom"].confidence == "reported"
    assert by_name["satgate"].prefixes == ("77.94.35.0/24",)
    assert all(w.source for w in rules.watched)
    assert by_name["kp_range"].server_activity == "nk_hosted_service"


def test_default_ruleset_entries_are_sourced_and_use_the_vocabulary():
    rules = load_rules()
    for rule in rules.ports:
        assert rule.source, rule
        assert rule.app in (None, *APPS) and rule.activity in (None, *ACTIVITIES)
    for domain in rules.domains:
        assert domain.source, domain
        assert domain.category in ACTIVITIES
    for net in rules.networks:
        assert net.source, net
        for p in net.prefixes:
            ipaddress.ip_network(p, strict=True)
    compile_rules(rules)


def test_default_ruleset_has_mining_ports_as_weak_suspicion_only():
    rules = load_rules()
    pool_ports = [p for p in rules.ports if p.activity == "mining_suspect"]
    assert pool_ports, "the default ruleset lists mining pool ports"
    assert all(p.weak and p.app is None for p in pool_ports)
    assert any(p.first_port <= 3333 <= p.last_port for p in pool_ports)
    # a port never confirms mining on its own
    assert not [p for p in rules.ports if p.activity == "mining"]


def test_user_file_layers_over_default(tmp_path):
    user = write(
        tmp_path,
        """
        [[watched]]
        name = "kp_range"
        prefixes = ["175.45.176.0/22", "10.99.0.0/16"]
        source = "test"

        [[watched]]
        name = "lab"
        prefixes = ["192.0.2.0/24"]

        [[port]]
        protocol = "tcp"
        ports = [443]
        app = "tls"
        activity = "vpn"
        source = "test override"
    """,
    )
    rules = load_rules(user)
    assert rules.paths == ("none", "kp_range", "unicom", "satgate", "lab")
    assert {w.name: w for w in rules.watched}["kp_range"].prefixes[-1] == "10.99.0.0/16"
    https = [p for p in rules.ports if p.protocol == 6 and p.first_port == 443 == p.last_port]
    assert len(https) == 1 and https[0].activity == "vpn"
    assert rules.files == (*map(str, builtin_paths()), str(user))


def test_defaults_can_be_left_out(tmp_path):
    user = write(
        tmp_path,
        """
        [[watched]]
        name = "lab"
        prefixes = ["192.0.2.0/24"]
    """,
    )
    assert load_rules(user, defaults=False).paths == ("none", "lab")


def test_prefix_file_is_read_relative_to_the_ruleset(tmp_path):
    (tmp_path / "relays.txt").write_text(
        "# tor relays, 2026-11-01\n198.51.100.7\n203.0.113.0/28  # exit\n\n"
    )
    user = write(
        tmp_path,
        """
        [[network]]
        service = "tor-relays"
        category = "tor"
        prefix_file = "relays.txt"
    """,
    )
    rules = load_rules(user, defaults=False)
    assert rules.networks[0].prefixes == ("198.51.100.7", "203.0.113.0/28")


def error_of(tmp_path: Path, text: str) -> RuleError:
    path = write(tmp_path, text)
    with pytest.raises(RuleError) as info:
        load_rules(path, defaults=False)
    assert info.value.path == str(path)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[watched]]\nname = "x"\nprefixes = ["10.0.0.0/8", "10.0.0.1/8"]\n', 3, "host bits set"),
        (
            '[[watched]]\nname = "x"\nprefixes = [\n  "10.0.0.0/8",\n  "10.0.0.300/8",\n]\n',
            5,
            "is not a prefix",
        ),
        ('[[watched]]\nname = "Bad Name"\nprefixes = ["10.0.0.0/8"]\n', 2, "path name"),
        (
            '[[watched]]\nname = "x"\nprefixes = ["10.0.0.0/8"]\ncolour = "red"\n',
            4,
            "unknown key 'colour'",
        ),
        (
            '[[watched]]\nname = "x"\nprefixes = ["10.0.0.0/8"]\n\n[[watched]]\nname = "y"\n'
            'prefixes = ["10.0.0.0/8"]\n',
            7,
            "already listed by watched[0]",
        ),
        ('[[port]]\nprotocol = "tcp"\nports = [70000]\napp = "tls"\n', 3, "outside 0..65535"),
        ('[[port]]\nprotocol = "tcp"\nports = ["90-80"]\napp = "tls"\n', 3, "ends before"),
        ('[[port]]\nprotocol = "tcp"\nports = [443]\napp = "tlss"\n', 4, "unknown name 'tlss'"),
        ('[[port]]\nprotocol = "tcp"\nports = [443]\n', 1, "needs an app or an activity"),
        ('[[port]]\nprotocol = "esp"\nports = [1]\nactivity = "vpn"\n', 3, "only tcp and udp"),
        ('[[port]]\nprotocol = "tcp"\nports = [443, 443]\napp = "tls"\n', 3, "already ruled"),
        (
            '[[port]]\nprotocol = "carrier-pigeon"\nports = [1]\napp = "tls"\n',
            2,
            "unknown protocol",
        ),
        (
            '[[domain]]\nservice = "fb"\ncategory = "social"\nsuffixes = ["face book.com"]\n',
            4,
            "not a domain name suffix",
        ),
        (
            '[[domain]]\nservice = "fb"\ncategory = "sociable"\nsuffixes = ["facebook.com"]\n',
            3,
            "unknown name 'sociable'",
        ),
        (
            '[[domain]]\nservice = "a"\ncategory = "social"\nsuffixes = ["x.com"]\n\n[[domain]]\n'
            'service = "b"\ncategory = "social"\nsuffixes = ["X.com."]\n',
            9,
            "already listed",
        ),
        ('[activities]\nprecedence = ["mining", "minning"]\n', 2, "unknown activity 'minning'"),
        ('[[watched]]\nname = "x"\nprefixes = "10.0.0.0/8"\n', 3, "expected list"),
        ('[watched]\nname = "x"\n', 1, "must be written as [[watched]]"),
        ('[[watched]\nname = "x"\n', 1, "invalid TOML"),
        ('[[network]]\nservice = "pool"\ncategory = "mining"\n', 1, "needs prefixes"),
    ],
)
def test_errors_name_file_and_line(tmp_path, text, line, message):
    err = error_of(tmp_path, text)
    assert message in str(err)
    assert err.line == line, str(err)
    assert str(err).startswith(f"{err.path}:{line}: ")


def test_error_in_prefix_file_names_that_file(tmp_path):
    (tmp_path / "list.txt").write_text("1.2.3.0/24\nnot-a-prefix\n")
    path = write(
        tmp_path, '[[network]]\nservice = "s"\ncategory = "tor"\nprefix_file = "list.txt"\n'
    )
    with pytest.raises(RuleError) as info:
        load_rules(path, defaults=False)
    assert info.value.path == str(tmp_path / "list.txt") and info.value.line == 2


def test_missing_ruleset_file_is_a_rule_error(tmp_path):
    with pytest.raises(RuleError, match="cannot read ruleset"):
        load_rules(tmp_path / "nope.toml")


def test_rules_from_text_and_precedence():
    rules = rules_from_text('[activities]\nprecedence = ["vpn", "mining"]\n', defaults=False)
    assert rules.precedence == ("vpn", "mining")


def test_ruleset_pickles_and_compares_equal():
    import pickle

    rules = load_rules()
    assert pickle.loads(pickle.dumps(rules)) == rules
    assert isinstance(rules, nkclass.Ruleset)


# --------------------------------------------------------------------------- hostile input


def network_with_list(tmp_path: Path, name: str, folder: Path | None = None) -> Path:
    """A ruleset in `folder` (default tmp_path) whose one network reads `name`."""
    return write(folder or tmp_path,
                 f'[[network]]\nservice = "s"\ncategory = "tor"\nprefix_file = "{name}"\n')


def list_error(path: Path, **kw) -> RuleError:
    with pytest.raises(RuleError) as info:
        load_rules(path, defaults=False, **kw)
    return info.value


@pytest.mark.parametrize("name", ["../outside.txt", "{tmp}/outside.txt", "link.txt"])
def test_list_files_outside_the_ruleset_folder_are_refused(tmp_path, name):
    folder = tmp_path / "rules"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("198.51.100.0/24\n")
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    path = network_with_list(tmp_path, name.format(tmp=tmp_path), folder)
    err = list_error(path)
    assert "is outside the ruleset's folder" in str(err) and "allowed_dirs" in str(err)
    assert (err.path, err.line) == (str(path), 4)
    # Named explicitly, the other folder is allowed.
    rules = load_rules(path, defaults=False, allowed_dirs=[tmp_path])
    assert rules.networks[0].prefixes == ("198.51.100.0/24",)


def test_text_rulesets_read_list_files_only_from_allowed_dirs(tmp_path):
    (tmp_path / "list.txt").write_text("198.51.100.0/24\n")
    text = f'[[network]]\nservice = "s"\ncategory = "tor"\nprefix_file = "{tmp_path}/list.txt"\n'
    with pytest.raises(RuleError, match="outside no folder"):
        rules_from_text(text, defaults=False)
    rules = rules_from_text(text, defaults=False, allowed_dirs=[tmp_path])
    assert rules.networks[0].prefixes == ("198.51.100.0/24",)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os
    import threading

    os.mkfifo(tmp_path / "pipe.txt")
    path = network_with_list(tmp_path, "pipe.txt")
    errors = []
    reader = threading.Thread(target=lambda: errors.append(list_error(path)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO list file blocked"
    assert "is not a regular file" in str(errors[0])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_are_refused_even_in_an_allowed_folder(tmp_path, device):
    path = network_with_list(tmp_path, device)
    assert "is not a regular file" in str(list_error(path, allowed_dirs=["/dev"]))


def test_proc_files_are_refused_and_never_quoted(tmp_path, monkeypatch):
    monkeypatch.setenv("NKCLASS_TEST_SECRET", "hunter2")
    path = network_with_list(tmp_path, "/proc/self/environ")
    err = list_error(path)
    assert "outside the ruleset's folder" in str(err)
    err = list_error(path, allowed_dirs=["/proc"])
    assert "pseudo-file" in str(err) and "hunter2" not in str(err)


def test_errors_in_list_files_never_quote_the_file(tmp_path):
    (tmp_path / "list.txt").write_text("198.51.100.0/24\nSECRET=hunter2\n")
    err = list_error(network_with_list(tmp_path, "list.txt"))
    assert (err.path, err.line) == (str(tmp_path / "list.txt"), 2)
    assert "hunter2" not in str(err) and "SECRET" not in str(err)
    assert "not an IPv4 or IPv6 prefix" in str(err)


@pytest.mark.parametrize(
    "data, line, message",
    [
        (b"198.51.100.0/24\n\x7fELF\x02\x01\x01\x00\x00\n", 2, "binary data (a NUL byte)"),
        (b"198.51.100.0/24\n\n\xff\xfe1.2.3.4\n", 3, "not UTF-8 text"),
        (b"198.51.100.0/24\n10.0.0.1/8\n", 2, "host bits are set"),
    ],
)
def test_bad_list_files_are_rule_errors_with_file_and_line(tmp_path, data, line, message):
    (tmp_path / "list.txt").write_bytes(data)
    err = list_error(network_with_list(tmp_path, "list.txt"))
    assert (err.path, err.line) == (str(tmp_path / "list.txt"), line)
    assert message in str(err)


def test_list_files_are_bounded_in_size(tmp_path):
    with open(tmp_path / "huge.txt", "wb") as f:
        f.truncate((64 << 20) + 1)  # sparse: no disk used
    err = list_error(network_with_list(tmp_path, "huge.txt"))
    assert "larger than the 64 MiB limit" in str(err)


def test_ruleset_files_are_bounded_and_must_be_text(tmp_path):
    with open(tmp_path / "huge.toml", "wb") as f:
        f.truncate((16 << 20) + 1)
    with pytest.raises(RuleError, match="larger than 16 MiB"):
        load_rules(tmp_path / "huge.toml", defaults=False)
    (tmp_path / "bin.toml").write_bytes(b'[ruleset]\nname = "x"\n\xc3\x28\n')
    with pytest.raises(RuleError, match="not UTF-8 text") as info:
        load_rules(tmp_path / "bin.toml", defaults=False)
    assert info.value.line == 3


@pytest.mark.parametrize(
    "text, line",
    [
        ("a = " + "[" * 50_000 + "]" * 50_000 + "\n", 1),
        ('[ruleset]\nname = "x"\n\nb = ' + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n", 4),
        ("a = [\n" * 40 + "]\n" * 40, 33),
    ],
)
def test_deeply_nested_toml_is_a_rule_error_with_line(tmp_path, text, line):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(RuleError, match="nested more than 32 deep") as info:
        load_rules(path, defaults=False)
    assert info.value.line == line


def test_nesting_inside_strings_and_comments_is_not_counted():
    text = ('[ruleset]\nname = "' + "[" * 100 + '"\ndescription = """\n' + "{" * 100 + '\n"""\n'
            "# " + "[" * 100 + "\nversion = '" + "[" * 100 + "'\n")
    assert rules_from_text(text, defaults=False).name == "[" * 100


@pytest.mark.parametrize(
    "first, second",
    [("1.2.3.0/24", "::ffff:1.2.3.0/120"), ("::ffff:1.2.3.0/120", "1.2.3.0/24"),
     ("0.0.0.0/0", "::ffff:0:0/96"), ("198.51.100.7", "::ffff:198.51.100.7/128")],
)
def test_ipv4_mapped_spellings_of_one_prefix_are_duplicates(tmp_path, first, second):
    err = error_of(tmp_path, f'[[watched]]\nname = "x"\nprefixes = ["{first}"]\n\n'
                             f'[[network]]\nservice = "s"\ncategory = "tor"\n'
                             f'prefixes = ["{second}"]\n')
    assert err.line == 8
    assert f"already listed by watched[0] ({err.path}:3)" in str(err)


def test_a_list_file_repeating_an_inline_prefix_names_both_places(tmp_path):
    (tmp_path / "list.txt").write_text("# relays\n::ffff:1.2.3.0/120\n")
    path = write(tmp_path, '[[watched]]\nname = "x"\nprefixes = ["1.2.3.0/24"]\n\n[[network]]\n'
                           'service = "s"\ncategory = "tor"\nprefix_file = "list.txt"\n')
    err = list_error(path)
    assert (err.path, err.line) == (str(tmp_path / "list.txt"), 2)
    assert "prefix 1.2.3.0/24 is already listed by watched[0]" in str(err)


@pytest.mark.parametrize("prefix", ["10.0.0.0/255.0.0.0", "10.0.0.0/08", "fe80::%eth0/64"])
def test_prefixes_the_tables_cannot_read_are_refused_when_parsed(tmp_path, prefix):
    err = error_of(tmp_path, f'[[watched]]\nname = "x"\nprefixes = ["{prefix}"]\n')
    assert err.line == 3 and "is not a prefix" in str(err)


def test_published_json_lists_go_through_the_same_guarded_reader(tmp_path):
    ruleset = ('[[network]]\nservice = "s"\ncategory = "tor"\nprefix_file = "{name}"\n'
               'prefix_format = "aws-ip-ranges"\n')
    (tmp_path / "deep.json").write_text('{"prefixes": ' + "[" * 5000 + "]" * 5000 + "}")
    err = list_error(write(tmp_path, ruleset.format(name="deep.json")))
    assert "nested too deeply" in str(err) and err.path == str(tmp_path / "deep.json")
    (tmp_path / "bad.json").write_text('{"prefixes": [{"ip_prefix": "SECRET=hunter2"}]}')
    err = list_error(write(tmp_path, ruleset.format(name="bad.json")))
    assert (err.path, err.line) == (str(tmp_path / "bad.json"), 1) and "hunter2" not in str(err)
    err = list_error(write(tmp_path, ruleset.format(name="/proc/self/environ")))
    assert "outside the ruleset's folder" in str(err)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ('[[ruleset]]\nname = "x"\n', 1, "'ruleset' must be written as one [ruleset] table"),
        ('[[activities]]\nprecedence = []\n', 1, "must be written as one [activities] table"),
        ("ruleset = 3\n", 1, "must be written as one [ruleset] table"),
        ("[[flow_shape]]\nthreshold = 0.5\n", 1, "must be written as one [flow_shape] table"),
        ("watched = [1, 2]\n", 1, "'watched' must be written as [[watched]] tables"),
        ('watched = ["x"]\n', 1, "'watched' must be written as [[watched]] tables"),
    ],
)
def test_tables_of_the_wrong_shape_are_rule_errors(tmp_path, text, line, message):
    # Found by fuzzing: [[ruleset]] made a list where a table was expected
    # and escaped as a TypeError.
    err = error_of(tmp_path, text)
    assert message in str(err) and err.line == line
