"""Collect the code blocks of README.md and docs/*.md with Sybil's Markdown lexers.

Every fenced block becomes part of a :class:`Case`, or an illustration:

- a ``python``, ``console``, ``sh`` or ``bash`` block is run (see ``_run.py``);
- a ``text`` or ``json`` block right after a code block (one paragraph of prose in between
  is fine, a heading is not) is that block's output, compared with what it really printed
  (placeholders: ``_compare.py``); when its first line is ``$ command``, that command runs;
- any other ``text`` block that starts with ``$ command`` is a transcript, run like a
  ``console`` block; the rest are illustrations (a diagram, a benchmark table);
- any other language (``yaml``, ``dockerfile``...) must carry a ``skip`` directive.

A directive in an HTML comment right before a block (invisible on GitHub) adjusts it; several
are separated by ``;``::

    <!-- docs-test: skip (needs Docker) -->            not run, counted with its reason
    <!-- docs-test: excerpt examples/x.py -->          the block is an excerpt of that file,
                                                       which is what runs (copied, not imported)
    <!-- docs-test: file test_checkout.py -->          the name the block is saved under
    <!-- docs-test: run pytest -q test_checkout.py --> the command run instead of ``python FILE``
    <!-- docs-test: exit 1 -->                         the expected exit status (default 0)
    <!-- docs-test: partial -->                        the shown output is one stretch of it
    <!-- docs-test: not-output -->                     on a text block: not the output above it
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass, field
from pathlib import Path

from sybil import Document, Region
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

RUNNABLE = frozenset({"python", "console", "sh", "bash"})
OUTPUT = frozenset({"text", "json"})
KNOWN_DIRECTIVES = frozenset({"skip", "excerpt", "file", "run", "exit", "partial", "not-output"})


@dataclass(frozen=True)
class Block:
    """One fenced block: its info-string language, its text and its first line."""

    language: str
    source: str
    line: int
    start: int = 0
    end: int = 0

    @property
    def is_transcript(self) -> bool:
        return self.source.startswith("$ ")


@dataclass(frozen=True)
class Directive:
    """The options of one ``<!-- docs-test: ... -->`` comment."""

    options: dict[str, str]
    line: int


@dataclass
class Case:
    """A code block, the options its directive gave it, and the output shown after it."""

    path: Path
    block: Block
    options: dict[str, str] = field(default_factory=dict)
    output: Block | None = None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.block.line}"

    @property
    def skip_reason(self) -> str | None:
        return self.options.get("skip")


def _parse_directive(arguments: str) -> dict[str, str]:
    options: dict[str, str] = {}
    parts = re.split(r";(?![^()]*\))", arguments)  # a reason in parentheses may hold a ";"
    for part in filter(None, (p.strip() for p in parts)):
        name, _, value = part.partition(" ")
        if name not in KNOWN_DIRECTIVES:
            raise ValueError(f"unknown docs-test directive {name!r} in {arguments!r}")
        if name == "skip":
            reason = value.strip().removeprefix("(").removesuffix(")").strip()
            if not reason:
                raise ValueError("docs-test: skip needs a reason: skip (why)")
            value = reason
        options[name] = value.strip()
    return options


def _block_parser(document: Document) -> list[Region]:
    lexer = RawFencedCodeBlockLexer(
        info_pattern=re.compile(r"(?P<language>[\w+-]*)[^\n]*$\n", re.MULTILINE)
    )
    regions = []
    for region in lexer(document):
        line = document.text.count("\n", 0, region.start) + 1
        source = str(region.lexemes["source"])
        regions.append(
            Region(
                region.start,
                region.end,
                Block(region.lexemes["language"], source, line, region.start, region.end),
            )
        )
    return regions


def _directive_parser(document: Document) -> list[Region]:
    lexer = DirectiveInHTMLCommentLexer(directive="docs-test", arguments=r".+?")
    regions = []
    for region in lexer(document):
        line = document.text.count("\n", 0, region.start) + 1
        options = _parse_directive(region.lexemes["arguments"])
        regions.append(Region(region.start, region.end, Directive(options, line)))
    return regions


def _follows(text: str, code: Block, block: Block, options: dict[str, str]) -> bool:
    """``block`` is the output of ``code``: at most one paragraph and no heading between them."""
    between = text[code.end : block.start]
    paragraphs = [p for p in re.split(r"\n\s*\n", between) if p.strip()]
    heading = re.search(r"^#", between, re.MULTILINE) is not None
    return "not-output" not in options and len(paragraphs) <= 1 and not heading


def collect(path: Path) -> tuple[list[Case], list[Block]]:
    """The cases of one document, and its illustrations (text blocks that are no output)."""
    document = Document.parse(str(path), _directive_parser, _block_parser)
    cases: list[Case] = []
    illustrations: list[Block] = []
    pending: dict[str, str] = {}
    previous: Case | None = None  # the case whose block is the last fenced block seen
    for example in document.examples():
        parsed = example.parsed
        if isinstance(parsed, Directive):
            pending = parsed.options
            continue
        block, options, pending = parsed, pending, {}
        if block.language in OUTPUT:
            if previous is not None and _follows(document.text, previous.block, block, options):
                previous.output = block
            elif block.is_transcript:
                cases.append(Case(path, Block("console", *astuple(block)[1:]), options))
            else:
                illustrations.append(block)
            previous = None
            continue
        if block.language not in RUNNABLE and "skip" not in options:
            raise ValueError(
                f"{path.name}:{block.line}: no runner for {block.language or 'unmarked'!r} "
                "blocks: add <!-- docs-test: skip (why) --> before it"
            )
        previous = Case(path, block, options)
        cases.append(previous)
    return cases, illustrations


def all_cases() -> tuple[list[Case], dict[Path, list[Block]]]:
    """Every case of README.md and docs/*.md, in document order, and each page's illustrations."""
    cases: list[Case] = []
    illustrations: dict[Path, list[Block]] = {}
    for path in DOCUMENTS:
        found, shown = collect(path)
        cases += found
        illustrations[path] = shown
    return cases, illustrations
