"""Documentation -> API pairs mined for training only (`training/data/docs.py`, issue 18):
API-reference sections anchored by their heading, one-API paragraphs and doc-comment
bodies, each with the API's name removed, through the real pair builder
(`pairs.package_pairs`: semcode's own stripping and chunking) on small real files."""

from __future__ import annotations

from training.data.docs import doc_body, heading_api_names
from training.data.pairs import PairSource, package_pairs

CODE = '''\
class Client:
    def fetch(self, url):
        return url

    def close(self):
        return None


class Pool:
    def fetch(self, key):
        return key


class License:
    pass


def parse_config(text, strict=False):
    """Parse a configuration file into a dictionary of settings.

    Sections become nested dictionaries and repeated keys keep the last value seen,
    so later files override earlier ones. Comments are dropped.

    Args:
        text: the file's content.
    """
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def render_table(rows):
    """Render rows as a table.

    Every column is padded to the width of its widest cell before joining them.
    """
    return "\\n".join(" | ".join(map(str, r)) for r in rows)


def render_grid(rows):
    """Render rows as a grid.

    Every column is padded to the width of its widest cell before joining them.
    """
    return render_table(rows)
'''

README = '''\
# settings

## parse_config(text, strict=False)

Reads the whole file at once and hands back nested dictionaries, one for each section
header found, even when `strict` mode and `render_table` are mentioned here too.

## Client.fetch(url)

Downloads the resource over the pooled connection and retries once on a reset socket.

## Fetching

Use `fetch` to get things; either class may be meant here, so no pair is made.

## Output

Tables are printed with `render_grid`, which pads every column so the cells line up.

Configuration comes first: `parse_config` reads the settings that choose the padding.

## License

Permission is hereby granted, free of charge, to any person obtaining a copy of this.
'''


def _pairs() -> dict[tuple[str, str], str]:
    """{(source, gold name): the first query}: the build keeps one pair per source and gold."""
    chunks, pairs = package_pairs({"settings/core.py": CODE, "README.md": README}, "seed")
    out: dict[tuple[str, str], str] = {}
    for p in pairs:
        out.setdefault((p.source.value, chunks[p.gold].qualified_name), p.query)
    return out


def test_a_heading_that_names_one_api_anchors_its_section() -> None:
    got = _pairs()
    query = got[(PairSource.API_DOCS.value, "parse_config")]
    assert query.startswith("Reads the whole file at once")
    assert "parse_config" not in query
    # the strict (bench) rule does not take it: its body names another definition too
    assert (PairSource.DOCS.value, "parse_config") not in got


def test_a_qualified_heading_picks_the_method_of_that_class() -> None:
    got = _pairs()
    assert got[(PairSource.API_DOCS.value, "Client.fetch")].startswith("Downloads the resource")
    assert (PairSource.API_DOCS.value, "Pool.fetch") not in got


def test_an_ambiguous_name_and_a_topic_heading_make_no_pair() -> None:
    got = _pairs()
    assert not any("either class" in q for q in got.values())
    assert not any("Permission is hereby granted" in q for q in got.values())


def test_a_paragraph_naming_one_api_is_a_pair_for_it() -> None:
    got = _pairs()
    # the section names two definitions, so the strict rule makes nothing of it
    assert (PairSource.DOCS.value, "render_grid") not in got
    query = got[(PairSource.API_DOCS.value, "render_grid")]
    assert query.startswith("Tables are printed with") and "render_grid" not in query
    chunks, pairs = package_pairs({"settings/core.py": CODE, "README.md": README}, "seed")
    second = [chunks[p.gold].qualified_name for p in pairs
              if p.query.startswith("Configuration comes first")]
    assert second == ["parse_config"]


def test_a_doc_comment_body_beyond_its_first_sentence_is_a_pair() -> None:
    got = _pairs()
    body = got[(PairSource.DOCSTRING_BODY.value, "parse_config")]
    assert body.startswith("Sections become nested dictionaries")
    assert "Args" not in body and "Parse a configuration" not in body
    assert got[(PairSource.DOCSTRING.value, "parse_config")].startswith("Parse a configuration")


def test_a_body_shared_by_two_definitions_answers_neither() -> None:
    got = _pairs()
    assert (PairSource.DOCSTRING_BODY.value, "render_table") not in got
    assert (PairSource.DOCSTRING_BODY.value, "render_grid") not in got


def test_doc_body_stops_at_tags_and_drops_the_name() -> None:
    doc = ("Open a session.\n\nThe open_session call reuses a pooled socket when \\a host "
           "matches one already connected. \\return the session\n@param host the host")
    assert doc_body(doc, "open_session") == (
        "The call reuses a pooled socket when host matches one already connected.")
    assert doc_body("Only one sentence here, nothing after it.", "x") == ""
    assert doc_body("Summary sentence here.\n\nToo short after.", "x") == ""


def test_heading_api_names() -> None:
    assert heading_api_names("### instance.get(url[, config])") == {"instance.get"}
    assert heading_api_names("new Router(options)") == {"Router"}
    assert heading_api_names("License") == set()
    assert heading_api_names("Usage (advanced)") == set()
