"""Roff (man page) source to readable plain text, for the manpages source of the extended corpus.

Handles the man(7) macros man pages use (.TH .SH .SS .B .I .BR .IR .PP .TP .IP .nf .fi .RS .RE,
tables, simple conditionals and strings), font and size escapes, special characters (groff_char(7))
and comments. ``is_so_redirect`` tells a page that only points to another (``.so man3/x.3``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

_GLYPHS = {  # \(xx and \[xx] special characters (groff_char(7)) that man pages use
    "em": "—",
    "en": "–",
    "hy": "-",
    "mi": "-",
    "bu": "•",
    "aq": "'",
    "dq": '"',
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "ga": "`",
    "ha": "^",
    "ti": "~",
    "rs": "\\",
    "sc": "§",
    "dg": "†",
    "de": "°",
    "+-": "±",
    "mu": "×",
    "di": "÷",
    "<=": "≤",
    ">=": "≥",
    "!=": "≠",
    "->": "→",
    "<-": "←",
    "ra": ">",
    "la": "<",
    "fm": "′",
    "sd": "″",
    "12": "½",
    "14": "¼",
    "34": "¾",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "Tm": "™",
    "R": "®",
    "Eu": "€",
    "eu": "€",
    "mc": "µ",
    "**": "*",
    "ua": "↑",
    "da": "↓",
    "ba": "|",
    "br": "|",
    "ul": "_",
}
_ACCENTS = {
    ":": "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    ",": "\u0327",
    "o": "\u030a",
}
_SIMPLE = {
    "-": "-",
    "e": "\\",
    "\\": "\\",
    " ": " ",
    "~": " ",
    "0": " ",
    "t": "\t",
    "'": "'",
    "`": "`",
    ".": ".",
}
_SILENT = set("&|^%:c{}duprazE!)/,")
_ESCAPE = re.compile(
    r"""\\(?:
      N'(?P<code>\d+)' | C'(?P<cname>[^']*)'
    | f(?:\[[^\]]*\]|\(..|.) | s[-+]?(?:\(\d\d|\[\d+\]|\d) | [nkgmM](?:\(..|\[[^\]]*\]|.)
    | [hvwoXlLbDRZSx]'[^']*'
    | \*(?:\((?P<s2>..)|\[(?P<sb>[^\]]*)\]|(?P<s1>.))
    | \((?P<g2>..) | \[(?P<gb>[^\]]*)\]
    | (?P<c>.))""",
    re.X,
)
_COMMENT = re.compile(r'^((?:[^\\]|\\.)*?)\\".*$')
_ARG = re.compile(r'"((?:[^"]|"")*)(?:"|$)|(?:\\.|[^\s"\\])(?:\\.|[^\s\\])*')
_FONT_JOIN = {"B", "I", "SM", "SB"}
_FONT_ALTERNATE = {"BR", "BI", "IB", "IR", "RB", "RI"}
_IGNORED = {
    "TH",
    "ad",
    "na",
    "nh",
    "hy",
    "in",
    "ti",
    "ta",
    "ft",
    "ne",
    "bp",
    "nr",
    "UC",
    "PD",
    "ll",
    "ps",
    "vs",
    "ns",
    "rs",
    "cs",
    "ss",
    "lf",
    "hw",
    "rm",
    "rn",
    "tr",
    "ev",
    "fam",
    "po",
    "pl",
    "cu",
    "ul",
    "so",
    "DT",
    "rstReportMargin",
    "mso",
    "ce",
    "fl",
    "cp",
    "ec",
    "eo",
    "ch",
    "wh",
    "lt",
    "pc",
}


def _glyph(name: str) -> str:
    if name in _GLYPHS:
        return _GLYPHS[name]
    if len(name) == 2 and name[0] in _ACCENTS:
        return unicodedata.normalize("NFC", name[1] + _ACCENTS[name[0]])
    if re.fullmatch(r"u[0-9A-F]{4,6}", name):
        return chr(int(name[1:], 16))
    return ""


def roff_inline(text: str, strings: dict[str, str] | None = None) -> str:
    """Replace roff escapes (fonts, glyphs, strings, sizes, registers) by plain characters."""
    strings = strings or {}

    def sub(m: re.Match[str]) -> str:
        if m["c"] is not None:
            return _SIMPLE.get(m["c"], "" if m["c"] in _SILENT else m["c"])
        if m["code"]:
            return chr(int(m["code"]))
        name = m["s2"] or m["sb"] or m["s1"]
        if name is not None:
            return strings.get(name, _glyph(name))
        name = m["g2"] or m["gb"] or m["cname"]
        return _glyph(name) if name is not None else ""

    return _ESCAPE.sub(sub, text)


def roff_args(text: str) -> list[str]:
    return [m[1].replace('""', '"') if m[1] is not None else m[0] for m in _ARG.finditer(text)]


def is_so_redirect(text: str) -> bool:
    """True for a page whose only content is ``.so other/page`` (comments and blank lines aside)."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not re.match(r"[.']\s*\\\"", ln)]
    return len(lines) == 1 and re.match(r"\.so\s+\S", lines[0]) is not None


class _Man:
    """A small man(7)/tbl renderer: filled paragraphs become one line, headings and tags their own."""

    def __init__(self) -> None:
        self.out: list[str] = []  # finished lines; "" separates paragraphs
        self.line = ""  # the filled line being built
        self.fill, self.glue, self.pending = (
            True,
            False,
            "",
        )  # pending: "head" or "tag" for the next text
        self.margin, self.body, self.stack = 0, 0, []  # indents in spaces: .RS margin, .TP/.IP body
        self.strings: dict[str, str] = {}
        self.urls: list[str] = []
        self.last_if = True

    def brk(self) -> None:
        if self.line.strip():
            self.out.append(self.line)
        self.line = ""

    def para(self) -> None:
        self.brk()
        if self.out and self.out[-1]:
            self.out.append("")

    def text(self, s: str) -> None:
        if self.pending:
            self.brk()
            self.out.append(" " * self.margin + s.strip())
            self.body = 4 if self.pending == "tag" else self.body
            self.pending = ""
        elif not self.fill:
            self.brk()
            self.out.append(" " * (self.margin + self.body) + s)
        elif self.line:
            self.line += ("" if self.glue else " ") + s.strip()
        else:
            self.line = " " * (self.margin + self.body) + s.strip()
        self.glue = False

    def condition(self, rest: str) -> tuple[bool, str]:
        m = re.match(r"(!?)('[^']*'[^']*'|c\s*\S+|\S+)\s*(.*)", rest)
        if not m:
            return False, ""
        neg, cond, body = m.groups()
        if cond.startswith("'"):
            a, b = cond[1:-1].split("'", 1)
            value = roff_inline(a, self.strings) == roff_inline(b, self.strings)
        else:
            value = cond.startswith("c") or cond in ("n", r"\n(.g", r"\n[.g]")
        return value != bool(neg), body

    def request(self, name: str, rest: str, lines: Iterator[str]) -> None:
        args = [roff_inline(a, self.strings) for a in roff_args(rest)]
        if name in ("SH", "SS"):
            self.para()
            self.margin, self.body, self.stack = 0, 0, []
            if args:
                self.out.append(" ".join(args))
            else:
                self.pending = "head"
        elif name in ("PP", "P", "LP", "HP"):
            self.para()
            self.body = 0
        elif name in ("sp", "YS"):
            self.para()
        elif name == "br":
            self.brk()
        elif name in ("TP", "TQ"):
            if name == "TP":
                self.para()
            else:
                self.brk()
            self.pending = "tag"
        elif name == "IP":
            self.para()
            self.body = 4
            if args and args[0]:
                self.line = " " * self.margin + args[0]
        elif name in ("RS", "INDENT"):
            self.brk()
            self.stack.append((self.margin, self.body))
            self.margin = max(0, self.margin + (-4 if rest.strip().startswith("-") else 4))
            self.body = 0
        elif name in ("RE", "UNINDENT"):
            self.brk()
            if self.stack:
                self.margin, self.body = self.stack.pop()
        elif name in ("nf", "EX", "fi", "EE"):
            self.brk()
            self.fill = name in ("fi", "EE")
        elif name in _FONT_JOIN or name in _FONT_ALTERNATE:
            if args:
                self.text((" " if name in _FONT_JOIN else "").join(args))
        elif name in ("UR", "MT"):
            self.urls.append(args[0] if args else "")
        elif name in ("UE", "ME"):
            url = self.urls.pop() if self.urls else ""
            if url:
                self.text(f"<{url}>")
            if args:
                self.glue = True
                self.text("".join(args))
        elif name == "SY":
            self.para()
            self.text(" ".join(args))
        elif name == "OP":
            self.text(f"[{' '.join(args)}]")
        elif name in ("de", "de1", "am", "ig"):
            for line in lines:
                if line.strip() in ("..", ". ."):
                    break
        elif name == "ds" and args:
            key, _, value = rest.strip().partition(" ")
            self.strings[key] = roff_inline(value.removeprefix('"'), self.strings)
        elif name in ("if", "ie", "el"):
            if name == "el":
                value, body = not self.last_if, rest.strip()
            else:
                value, body = self.condition(rest.strip())
            if name == "ie":
                self.last_if = value
            block = body.startswith("\\{")
            body = body.removeprefix("\\{").removesuffix("\\").strip()
            if value and body:
                self.line_in(body, lines)
            elif block and not value:
                depth = 1 - body.count("\\}")
                for line in lines:
                    depth += line.count("\\{") - line.count("\\}")
                    if depth <= 0:
                        break
        elif name == "TS":
            self.table(lines)
        elif name not in _IGNORED and args:  # an unknown (page-defined) macro: keep its words
            self.text(" ".join(args))

    def table(self, lines: Iterator[str]) -> None:
        """tbl: skip the options and format lines, then write each row on one line, cells tab-separated;
        a ``T{ ... T}`` text block becomes one cell."""
        self.brk()
        tab, in_format, in_block, row = "\t", True, False, ""
        for line in lines:
            line = _COMMENT.sub(r"\1", line)
            if line.startswith(".TE"):
                break
            if in_format:
                if m := re.search(r"tab\s*\((.)\)", line):
                    tab = m[1]
                in_format = not line.rstrip().endswith(".")
                continue
            if line.startswith((".", "'")):
                name, _, rest = line[1:].strip().partition(" ")
                in_format = name == "T&"
                if in_block and (name in _FONT_JOIN or name in _FONT_ALTERNATE):
                    words = (" " if name in _FONT_JOIN else "").join(roff_args(rest))
                    row += ("" if row.endswith(tab) else " ") + words
                continue
            if in_block and line.startswith("T}"):
                in_block, row = False, row + line[2:]
            elif in_block:
                row += ("" if row.endswith(tab) else " ") + line.strip()
                continue
            elif line.strip() in ("_", "=", ""):
                continue
            else:
                row = line
            if row.endswith("T{"):
                in_block, row = True, row[:-2]
                continue
            cells = roff_inline(row, self.strings).split(tab)
            self.out.append(" " * self.margin + "\t".join(c.strip() for c in cells).rstrip())
        self.para()

    def line_in(self, raw: str, lines: Iterator[str]) -> None:
        raw = _COMMENT.sub(r"\1", raw)
        if raw.strip() in ("\\}", ".\\}", "'\\}"):
            return
        glue = raw.rstrip().endswith("\\c")
        if raw[:1] in (".", "'"):
            m = re.match(r"[.']\s*(\S*)\s*(.*)", raw)
            if m and m[1]:
                self.request(m[1].replace("\\}", ""), m[2].replace("\\}", ""), lines)
        elif not raw.strip():
            if self.fill:
                self.para()
            else:
                self.out.append("")
        else:
            if (
                self.fill and raw[:1] in " \t"
            ):  # a line starting with a space breaks the filled line
                self.brk()
            self.text(roff_inline(raw.replace("\\}", ""), self.strings))
        self.glue = self.glue or glue


def roff_to_text(source: str) -> str:
    """Convert a man page written in roff (man(7) macros, tbl tables) to readable plain text."""
    source = re.sub(r"(?<!\\)((?:\\\\)*)\\\n", r"\1", source)  # escaped newlines join lines
    page = _Man()
    lines = iter(source.splitlines())
    for raw in lines:
        page.line_in(raw, lines)
    page.brk()
    text = "\n".join(line.rstrip() for line in page.out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- dictd (FOLDOC, GCIDE) ------------------------------------------------------------------------
