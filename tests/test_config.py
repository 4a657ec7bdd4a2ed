"""config.py: durations, sizes, substitution, schema problems, semantic checks, shipped files."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from gateway.config import (
    ByteSize,
    Duration,
    Loaded,
    load_file,
    load_text,
    parse_duration,
    parse_size,
)
from gateway.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
NO_ENV: dict[str, str] = {}


def problems_of(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, environ=NO_ENV if environ is None else environ)
    assert info.value.source == "<text>"
    return info.value.problems


def one_destination(body: str, environ: Mapping[str, str] | None = None) -> Loaded:
    """Load a config with one destination whose keys (indented YAML lines) are ``body``."""
    text = "destinations:\n  - name: d\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return load_text(text, environ=NO_ENV if environ is None else environ)


def destination_problems(body: str, environ: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        one_destination(body, environ)
    return info.value.problems


# ---------------------------------------------------------------------------------------
# Durations and sizes


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("2h", 7200.0),
        ("1h2m3.5s", 3723.5),
        ("500us", 0.0005),
        ("100ns", 1e-7),
        (".5s", 0.5),
        ("0", 0.0),
        ("45", 45.0),
        ("1.5", 1.5),
        (20, 20.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["3 minutes", "", "5x", "1h-2m", "s", "1.2.3s", "1d", "30S", "ms250", "1e3s"]
)
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid duration {text!r}")):
        parse_duration(text)


@pytest.mark.parametrize("value", ["-5s", "-1", -1, -0.5])
def test_parse_duration_rejects_negative(value: str | float) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, None, [1], float("nan"), float("inf")])
def test_parse_duration_rejects_other_types(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10MiB", 10 * 1024 * 1024),
        ("512KiB", 512 * 1024),
        ("1GiB", 1024**3),
        ("1MB", 1_000_000),
        ("1kB", 1000),
        ("1KB", 1000),
        ("100B", 100),
        ("1.5KiB", 1536),
        ("10 MiB", 10 * 1024 * 1024),
        ("2048", 2048),
        (4096, 4096),
        (0, 0),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["10 megabytes", "", "MiB", "1.5.5MB", "10Mi", "1XB"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid size {text!r}")):
        parse_size(text)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("-1KiB", "must not be negative"), (-1, "must not be negative"), ("0.5B", "whole number")],
)
def test_parse_size_rejects_impossible_sizes(value: str | int, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_size(value)


def test_spelled_durations_and_sizes_load_as_float_and_int_subclasses() -> None:
    loaded = load_text(
        "server: {read_timeout: 1m30s, write_timeout: 5, max_body_bytes: 1MiB}\n"
        "destinations: [{name: d, url: 'http://x', timeout: 250ms}]\n",
        environ=NO_ENV,
    )
    server = loaded.config.server
    assert isinstance(server.read_timeout, Duration)
    assert server.read_timeout == 90.0
    assert server.write_timeout == 5.0
    assert isinstance(server.max_body_bytes, ByteSize)
    assert server.max_body_bytes == 1024 * 1024
    assert loaded.config.destinations[0].timeout == pytest.approx(0.25)


def test_bad_duration_names_its_key_path() -> None:
    assert destination_problems("url: http://x\ntimeout: 3 minutes") == [
        "destinations[0].timeout: invalid duration '3 minutes' (use e.g. 30s, 1m30s, 250ms)"
    ]


def test_bad_size_names_its_key_path() -> None:
    problems = problems_of("server: {max_body_bytes: 10 megabytes}")
    assert problems == [
        "server.max_body_bytes: invalid size '10 megabytes' "
        "(use e.g. 10MiB, 512KiB, 1MB or a number of bytes)"
    ]


# ---------------------------------------------------------------------------------------
# Substitution


def header(loaded: Loaded, name: str = "X") -> str:
    return loaded.config.destinations[0].headers[name]


def test_env_substitution() -> None:
    loaded = one_destination(
        "url: http://x\nheaders: {X: 'Bearer ${env:TOKEN}'}", {"TOKEN": "s3cr3t-token"}
    )
    assert header(loaded) == "Bearer s3cr3t-token"
    assert loaded.secrets == {"s3cr3t-token"}


def test_env_default_is_used_when_unset_or_empty_and_is_not_a_secret() -> None:
    body = "url: '${env:URL:-http://localhost:9/x}'\nheaders: {X: '${env:EMPTY:-fallback}'}"
    loaded = one_destination(body, {"EMPTY": ""})
    assert loaded.config.destinations[0].url == "http://localhost:9/x"
    assert header(loaded) == "fallback"
    assert loaded.secrets == frozenset()
    loaded = one_destination(body, {"URL": "http://set.example/hook", "EMPTY": "given"})
    assert loaded.config.destinations[0].url == "http://set.example/hook"
    assert header(loaded) == "given"


def test_missing_env_names_variable_and_key_path() -> None:
    assert destination_problems("url: http://x\nheaders: {X: '${env:NOPE}'}") == [
        "destinations[0].headers.X: environment variable NOPE is not set (${env:NOPE})"
    ]


def test_file_substitution_strips_one_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "body"
    body = f"url: http://x\ntemplate: '${{file:{secret}}}'"
    secret.write_text("line-one\n\n")
    assert one_destination(body).config.destinations[0].template == "line-one\n"
    secret.write_text("no-newline")
    assert one_destination(body).config.destinations[0].template == "no-newline"


def test_missing_file_names_path_and_key_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert destination_problems(f"url: http://x\nheaders: {{X: '${{file:{missing}}}'}}") == [
        f"destinations[0].headers.X: cannot read file {missing}: No such file or directory"
    ]


def test_file_content_never_appears_in_a_problem(tmp_path: Path) -> None:
    secret = tmp_path / "timeout"
    secret.write_text("hunter2-not-a-duration\n")
    problems = destination_problems(f"url: http://x\ntimeout: '${{file:{secret}}}'")
    assert problems == [
        "destinations[0].timeout: invalid duration '***' (use e.g. 30s, 1m30s, 250ms)"
    ]


def test_unreadable_file_is_reported_without_content(tmp_path: Path) -> None:
    problems = destination_problems(f"url: http://x\nheaders: {{X: '${{file:{tmp_path}}}'}}")
    assert problems == [f"destinations[0].headers.X: cannot read file {tmp_path}: Is a directory"]


def test_cred_reads_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("cred-value-123\n")
    loaded = one_destination(
        "url: http://x\nheaders: {X: '${cred:api-key}'}", {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    )
    assert header(loaded) == "cred-value-123"
    assert "cred-value-123" in loaded.secrets


def test_cred_without_credentials_directory_is_a_problem() -> None:
    (problem,) = destination_problems("url: http://x\nheaders: {X: '${cred:api-key}'}")
    assert problem.startswith("destinations[0].headers.X: ${cred:api-key} needs ")
    assert "CREDENTIALS_DIRECTORY" in problem


def test_missing_credential_names_it(tmp_path: Path) -> None:
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert destination_problems("url: http://x\nheaders: {X: '${cred:nope}'}", environ) == [
        "destinations[0].headers.X: cannot read credential nope: No such file or directory"
    ]


def test_nested_substitution(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("nested-secret\n")
    loaded = one_destination(
        "url: http://x\nheaders: {X: '${file:${env:CREDENTIALS_DIRECTORY}/token}'}",
        {"CREDENTIALS_DIRECTORY": str(tmp_path)},
    )
    assert header(loaded) == "nested-secret"
    # The directory only built a path; the file's content is what must be masked.
    assert loaded.secrets == {"nested-secret"}


def test_reference_inside_a_default_is_resolved_only_when_needed(tmp_path: Path) -> None:
    body = f"url: http://x\nheaders: {{X: '${{env:TOKEN:-${{file:{tmp_path}/absent}}}}'}}"
    assert header(one_destination(body, {"TOKEN": "from-env"})) == "from-env"
    (problem,) = destination_problems(body)
    assert "cannot read file" in problem


def test_dollar_escape_mustache_and_other_dollars_are_untouched() -> None:
    template = "{{ labels.alertname }} costs $5, ${HOME} and $$ stay; $${env:X} is literal"
    loaded = one_destination(f"url: http://x\ntemplate: '{template}'", {"X": "never-used"})
    assert loaded.config.destinations[0].template == (
        "{{ labels.alertname }} costs $5, ${HOME} and $$ stay; ${env:X} is literal"
    )
    assert loaded.secrets == frozenset()


def test_keys_are_never_substituted() -> None:
    problems = destination_problems("url: http://x\nheaders: {'${env:X}': v}", {"X": "Name"})
    assert problems == ["destinations[0].headers: invalid header name '${env:X}'"]


def test_misspelled_substitution_is_reported() -> None:
    (problem,) = destination_problems("url: http://x\nheaders: {X: '${evn:TOKEN}'}")
    assert problem.startswith("destinations[0].headers.X: unknown substitution '${evn:...}'")


def test_unterminated_substitution_is_reported() -> None:
    (problem,) = destination_problems("url: http://x\nheaders: {X: '${env:TOKEN'}")
    assert problem.startswith("destinations[0].headers.X: unterminated '${'")


def test_substituted_values_are_not_substituted_again() -> None:
    loaded = one_destination("url: http://x\nheaders: {X: '${env:A}'}", {"A": "${env:B}"})
    assert header(loaded) == "${env:B}"


def test_substituted_numbers_and_booleans_convert() -> None:
    loaded = one_destination(
        "url: http://x\nbatch_size: '${env:N}'\nsplit_alerts: '${env:SPLIT}'",
        {"N": "5", "SPLIT": "true"},
    )
    dest = loaded.config.destinations[0]
    assert (dest.batch_size, dest.split_alerts) == (5, True)


def test_secrets_collect_env_file_and_cred_values_but_not_short_ones(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("file-secret\n")
    (tmp_path / "c").write_text("cred-secret")
    loaded = one_destination(
        "url: 'https://${env:HOST}/${env:SHORT}'\n"
        f"headers: {{A: '${{file:{tmp_path}/f}}', B: '${{cred:c}}', C: '${{env:D:-default-x}}'}}",
        {"HOST": "hooks.example", "SHORT": "abc", "CREDENTIALS_DIRECTORY": str(tmp_path)},
    )
    assert loaded.secrets == {"hooks.example", "file-secret", "cred-secret"}


def test_relative_file_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("relative-token\n")
    path = tmp_path / "gateway.yaml"
    path.write_text("destinations: [{name: d, url: 'http://x', headers: {X: '${file:token}'}}]\n")
    assert header(load_file(path, environ=NO_ENV)) == "relative-token"


# ---------------------------------------------------------------------------------------
# Schema problems


def test_bad_enum_value_lists_the_choices() -> None:
    assert destination_problems("url: http://x\nmethod: post") == [
        "destinations[0].method: expected one of GET, POST, PUT, PATCH, DELETE, got 'post'"
    ]


def test_unknown_key() -> None:
    assert destination_problems("url: http://x\ncolour: red") == [
        "destinations[0].colour: unknown key"
    ]
    assert problems_of("sever: {}") == ["sever: unknown key (did you mean server?)"]


def test_wrong_types_and_constraints() -> None:
    problems = destination_problems(
        "url: http://x\nbatch_size: many\nparallel_requests: -1\nenabled: maybe\n"
        "headers: {X-Count: 5}\npool: {max_connections: 0}"
    )
    assert problems == [
        "destinations[0].batch_size: expected int, got 'many'",
        "destinations[0].parallel_requests: expected int >= 0, got -1",
        "destinations[0].enabled: expected bool, got 'maybe'",
        "destinations[0].headers.X-Count: expected str, got 5 (quote it in YAML)",
        "destinations[0].pool.max_connections: expected int >= 1, got 0",
    ]


def test_missing_name_and_non_mapping_destination() -> None:
    problems = problems_of("destinations:\n  - url: http://x\n  - just-a-string\n")
    assert problems == [
        "destinations[0].name: missing (required)",
        "destinations[1]: expected a mapping, got 'just-a-string'",
    ]


def test_problems_in_several_destinations_are_all_reported() -> None:
    text = """
destinations:
  - name: zero
    url: http://x
    method: post
  - name: one
    url: http://x
  - name: two
    url: http://x
    colour: blue
  - name: three
    url: http://x
    timeout: 3 minutes
    batch_size: -2
"""
    with pytest.raises(ConfigError) as info:
        load_text(text, source="/etc/gw.yaml", environ=NO_ENV)
    assert info.value.problems == [
        "destinations[0].method: expected one of GET, POST, PUT, PATCH, DELETE, got 'post'",
        "destinations[2].colour: unknown key",
        "destinations[3].timeout: invalid duration '3 minutes' (use e.g. 30s, 1m30s, 250ms)",
        "destinations[3].batch_size: expected int >= 0, got -2",
    ]
    # Printed, every problem names the file.
    assert str(info.value).splitlines()[0].startswith("/etc/gw.yaml: destinations[0].method: ")
    assert len(str(info.value).splitlines()) == 4


def test_empty_sections_mean_defaults() -> None:
    loaded = load_text("server:\nlogging:\ndestinations:\n", environ=NO_ENV)
    assert loaded.config.server.address == ":8080"
    assert loaded.config.destinations == []


def test_yaml_syntax_error_has_line_and_column() -> None:
    (problem,) = problems_of("server:\n  address: ':8080'\n  bad: [unclosed\n")
    assert re.match(r"invalid YAML at line \d+, column \d+: ", problem), problem


def test_duplicate_yaml_key_is_an_error() -> None:
    (problem,) = problems_of("server: {}\nserver: {}\n")
    assert problem.startswith("invalid YAML at line 2, column 1: found duplicate key 'server'")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a mapping of settings, got a list"),
        ("just text", "expected a mapping of settings, got 'just text'"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, problem: str) -> None:
    (found,) = problems_of(text)
    assert found.startswith(problem)


def test_yaml_alias_expansion_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    (problem,) = problems_of("\n".join(lines))
    assert problem.startswith("more than 100000 values")


def test_json_is_accepted() -> None:
    loaded = load_text('{"destinations": [{"name": "d", "kind": "log"}]}', environ=NO_ENV)
    assert loaded.config.destinations[0].kind == "log"


# ---------------------------------------------------------------------------------------
# Semantic checks


def test_duplicate_destination_names() -> None:
    text = "destinations:\n" + "".join(f"  - {{name: {n}, kind: log}}\n" for n in "abca")
    assert problems_of(text) == ["destinations[3].name: duplicate of destinations[0]"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "missing (kind: http needs an http:// or https:// URL)"),
        ("ftp://files.example/x", "must start with http:// or https://"),
        ("hooks.example/x", "must start with http:// or https://"),
        ("http:///path-only", "has no host"),
        ("http://host:99999/", "not a valid URL (check the host and port)"),
        ("http://host/a b", "must not contain spaces or control characters"),
    ],
)
def test_url_checks(url: str, reason: str) -> None:
    assert destination_problems(f"url: '{url}'") == [f"destinations[0].url: {reason}"]


def test_url_secrets_never_appear_in_problems() -> None:
    problems = destination_problems("url: 'ftp://user:pa55word@host/p?token=qu3ry'")
    assert problems == ["destinations[0].url: must start with http:// or https://"]
    problems = destination_problems(
        "url: '${env:HOOK}'", {"HOOK": "gopher://u:pw-in-env@host/x?t=zz"}
    )
    assert problems == ["destinations[0].url: must start with http:// or https://"]
    text = "\n".join(problems)
    assert "pa55word" not in text and "pw-in-env" not in text


def test_url_from_substitution_is_checked_after_it() -> None:
    loaded = one_destination("url: '${env:HOOK}'", {"HOOK": "https://u:p@hooks.example/T1"})
    assert loaded.config.destinations[0].url == "https://u:p@hooks.example/T1"


def test_log_destination_needs_no_url() -> None:
    assert one_destination("kind: log").config.destinations[0].url == ""


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_bodyless_methods_need_query_format(method: str) -> None:
    assert destination_problems(f"url: http://x\nmethod: {method}") == [
        f"destinations[0].method: {method} sends no body; use format: query"
    ]
    dest = one_destination(f"url: http://x\nmethod: {method}\nformat: query").config.destinations
    assert dest[0].method == method


def test_pool_follows_parallel_requests_when_not_given() -> None:
    pool = one_destination("url: http://x\nparallel_requests: 40").config.destinations[0].pool
    assert (pool.max_connections, pool.max_keepalive_connections) == (40, 40)
    pool = one_destination("url: http://x\nparallel_requests: 8").config.destinations[0].pool
    assert (pool.max_connections, pool.max_keepalive_connections) == (16, 16)


def test_explicit_pool_smaller_than_parallel_requests_is_a_problem() -> None:
    (problem,) = destination_problems(
        "url: http://x\nparallel_requests: 10\npool: {max_connections: 8, "
        "max_keepalive_connections: 8}"
    )
    assert problem.startswith(
        "destinations[0].parallel_requests: 10 is more than pool.max_connections (8)"
    )


def test_keepalive_above_max_connections_is_a_problem() -> None:
    problems = destination_problems(
        "url: http://x\npool: {max_connections: 4, max_keepalive_connections: 8}"
    )
    assert problems == [
        "destinations[0].pool.max_keepalive_connections: 8 is more than pool.max_connections (4)"
    ]


@pytest.mark.parametrize("address", [":8080", "127.0.0.1:9095", "[::1]:8080", "localhost:0"])
def test_good_server_addresses(address: str) -> None:
    assert load_text(f"server: {{address: '{address}'}}").config.server.address == address


@pytest.mark.parametrize("address", ["8080", ":65536", "::1:8080", "[::1", "a b:80", ":http"])
def test_bad_server_addresses(address: str) -> None:
    (problem,) = problems_of(f"server: {{address: '{address}'}}")
    assert problem.startswith("server.address: ")


def test_timeouts_must_be_positive() -> None:
    problems = problems_of(
        "server: {read_timeout: 0s}\ndestinations: [{name: d, url: 'http://x', timeout: 0}]"
    )
    assert problems == [
        "server.read_timeout: must be more than 0s",
        "destinations[0].timeout: must be more than 0s",
    ]


def test_header_names_and_values() -> None:
    problems = destination_problems(
        'url: http://x\nheaders: {"Bad Name": ok, X-Split: "a\\r\\nInjected: yes"}'
    )
    assert problems == [
        "destinations[0].headers: invalid header name 'Bad Name'",
        "destinations[0].headers.X-Split: value must not contain CR, LF or NUL",
    ]


def test_no_destinations_is_fine() -> None:
    assert load_text("{}", environ=NO_ENV).config.destinations == []
    loaded = load_text("destinations: [{name: d, kind: log, enabled: false}]", environ=NO_ENV)
    assert loaded.config.destinations[0].enabled is False


# ---------------------------------------------------------------------------------------
# Files


def test_load_file_reports_source_and_digest(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(b"destinations: [{name: d, kind: log}]\n")
    loaded = load_file(path, environ=NO_ENV)
    assert loaded.source == str(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_file(path, environ=NO_ENV)
    assert info.value.source == str(path)
    assert str(info.value) == f"{path}: cannot read the file: No such file or directory"


class Placeholders(Mapping[str, str]):
    """Every environment variable is set, to a value that is valid wherever URLs are."""

    def __init__(self, credentials_directory: Path) -> None:
        self.credentials_directory = str(credentials_directory)

    def __getitem__(self, name: str) -> str:
        if name == "CREDENTIALS_DIRECTORY":
            return self.credentials_directory
        return "https://placeholder.invalid/secret"

    def __iter__(self) -> Iterator[str]:
        return iter(["CREDENTIALS_DIRECTORY"])

    def __len__(self) -> int:
        return 1


def load_shipped(path: Path, tmp_path: Path) -> Loaded:
    # Shipped files take their secrets from the environment or systemd credentials; give
    # every name a placeholder so the file itself is what is tested.
    for name in re.findall(r"\$\{cred:([^}]+)\}", path.read_text()):
        (tmp_path / name).write_text("placeholder-credential\n")
    return load_file(path, environ=Placeholders(tmp_path))


def test_default_config_loads(tmp_path: Path) -> None:
    loaded = load_shipped(REPO / "config" / "gateway.yaml", tmp_path)
    assert loaded.config.destinations


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "config" / "examples").glob("*.yaml")),
    ids=lambda path: path.name,
)
def test_example_config_loads(path: Path, tmp_path: Path) -> None:
    load_shipped(path, tmp_path)
