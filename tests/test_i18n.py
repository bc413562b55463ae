"""The interface speaks Russian (the default) and English, and the Russian catalogue leaves nothing
out: every string the code and the templates mark for translation has a reviewed Russian text,
and the compiled ``django.mo`` (committed, so that CI needs no gettext tools) says the same as
``django.po``.

When a test here fails after a new string: run ``estafeta makemessages -l ru`` in
``src/estafeta``, translate the new entries (and drop their ``#, fuzzy`` marks), then
``estafeta compilemessages``, and commit both files.
"""

from __future__ import annotations

import ast
import gettext
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.test import Client as HttpClient
from django.utils.translation.template import templatize

from .factories import World

SRC = Path(__file__).resolve().parents[1] / "src" / "estafeta"
CATALOGUE = SRC / "locale" / "ru" / "LC_MESSAGES"
PO = CATALOGUE / "django.po"
MO = CATALOGUE / "django.mo"
RUSSIAN_PLURALS = ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
                   "(n%100<10 || n%100>=20) ? 1 : 2);")

# (context, msgid, msgid_plural): one message as gettext keys it.
Key = tuple[str | None, str, str | None]


# --- the .po file -------------------------------------------------------------------------------


@dataclass
class Entry:
    line: int
    flags: list[str] = field(default_factory=list)
    strings: dict[str, str] = field(default_factory=dict)
    obsolete: bool = False

    @property
    def key(self) -> Key:
        return (self.strings.get("msgctxt"), self.strings["msgid"],
                self.strings.get("msgid_plural"))

    @property
    def translations(self) -> list[str]:
        if "msgid_plural" not in self.strings:
            return [self.strings["msgstr"]]
        forms = sorted((k for k in self.strings if k.startswith("msgstr[")),
                       key=lambda k: int(k[7:-1]))
        return [self.strings[k] for k in forms]


_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")$')


def parse_po(text: str) -> list[Entry]:
    """The entries of a .po file, the header (msgid "") first."""
    entries: list[Entry] = []
    entry: Entry | None = None
    last: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _KEYWORD.match(line)
        starts = entry is None or (
            any(k.startswith("msgstr") for k in entry.strings)
            and (line.startswith("#") or (match is not None
                                          and match[1] in ("msgctxt", "msgid"))))
        if starts:
            entry = Entry(line=number)
            entries.append(entry)
            last = None
        assert entry is not None
        if line.startswith("#~"):
            entry.obsolete = True
            entry.strings.setdefault("msgstr", "")
        elif line.startswith("#,"):
            entry.flags += [flag.strip() for flag in line[2:].split(",") if flag.strip()]
        elif line.startswith("#"):
            continue
        elif match is not None:
            last = match[1]
            entry.strings[last] = ast.literal_eval(match[2])
        elif line.startswith('"') and last is not None:
            entry.strings[last] += ast.literal_eval(line)
        else:
            raise AssertionError(f"django.po line {number} is not gettext syntax: {line!r}")
    return [e for e in entries if not e.obsolete]


@pytest.fixture(scope="module")
def po() -> list[Entry]:
    return parse_po(PO.read_text(encoding="utf-8"))


def messages(po: list[Entry]) -> list[Entry]:
    return [e for e in po if e.strings["msgid"] != ""]


def header(po: list[Entry]) -> dict[str, str]:
    head = po[0]
    assert head.strings["msgid"] == "", "the header must be the first entry"
    lines = head.strings["msgstr"].splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


# --- what the code and the templates mark for translation --------------------------------------

# Argument positions as makemessages reads them: (context, singular, plural).
FUNCTIONS: dict[str, tuple[int | None, int, int | None]] = {
    "gettext": (None, 0, None), "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None), "_": (None, 0, None),
    "ngettext": (None, 0, 1), "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None), "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2), "npgettext_lazy": (0, 1, 2),
}
TRANSLATION_MODULE = "django.utils.translation"


def _source_files(*suffixes: str) -> Iterator[Path]:
    for path in sorted(SRC.rglob("*")):
        parts = path.relative_to(SRC).parts
        if path.suffix in suffixes and "migrations" not in parts and path.is_file():
            yield path


def _key(args: list[ast.expr], spec: tuple[int | None, int, int | None]) -> Key | None:
    def text(index: int | None) -> str | None:
        if index is None:
            return None
        if index >= len(args):
            raise IndexError
        arg = args[index]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        raise ValueError  # a variable: nothing for makemessages to collect

    try:
        singular = text(spec[1])
        assert singular is not None
        return (text(spec[0]), singular, text(spec[2]))
    except (IndexError, ValueError):
        return None


def python_messages(path: Path) -> Iterator[tuple[Key, str]]:
    """Calls of Django's translation functions under any name they were imported as.

    ``from django.utils.translation import gettext as _g`` works at run time, but makemessages
    only knows the usual names: such strings are caught here, not by makemessages.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == TRANSLATION_MODULE:
            for alias in node.names:
                if alias.name in FUNCTIONS:
                    names[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module == "django.utils":
            modules |= {a.asname or a.name for a in node.names if a.name == "translation"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = None
        if isinstance(node.func, ast.Name):
            function = names.get(node.func.id)
        elif (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id in modules and node.func.attr in FUNCTIONS):
            function = node.func.attr
        if function is not None:
            key = _key(node.args, FUNCTIONS[function])
            if key is not None:
                yield key, f"{path.relative_to(SRC)}:{node.lineno}"


_STRING = r"""[rRuUbB]{0,2}(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_TEMPLATE_CALL = re.compile(
    rf"\b(gettext|pgettext|ngettext|npgettext|_)\(\s*({_STRING}(?:\s*,\s*{_STRING})*)"
    r"\s*(?:,\s*count\s*)?\)")


def template_messages(path: Path) -> Iterator[tuple[Key, str]]:
    """What makemessages collects from a template: Django's own ``templatize`` rewrites it into
    gettext calls (as ``{% translate %}`` and ``{% blocktranslate %}`` are read at run time)."""
    code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    for match in _TEMPLATE_CALL.finditer(code):
        args = ast.literal_eval(f"({match[2]},)")
        context, singular, plural = FUNCTIONS[match[1]]
        yield ((args[context] if context is not None else None, args[singular],
                args[plural] if plural is not None else None),
               f"{path.relative_to(SRC)}:{code.count(chr(10), 0, match.start()) + 1}")


def source_messages() -> dict[Key, list[str]]:
    found: dict[Key, list[str]] = {}
    for path in _source_files(".py"):
        for key, where in python_messages(path):
            found.setdefault(key, []).append(where)
    for path in _source_files(".html", ".txt"):
        for key, where in template_messages(path):
            found.setdefault(key, []).append(where)
    return found


# --- the catalogue -------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc%]|\{[a-zA-Z_]\w*\}")


def placeholders(text: str) -> list[str]:
    return sorted(p for p in _PLACEHOLDER.findall(text) if p != "%%")


def edges(text: str) -> tuple[str, str]:
    """The white space a message starts and ends with (the code may join messages on it)."""
    return text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]


def test_the_parser_reads_what_gettext_writes() -> None:
    sample = parse_po('msgid ""\nmsgstr ""\n"Language: ru\\n"\n\n'
                      '#: a.py:1\n#, fuzzy, python-format\nmsgctxt "task"\nmsgid "one"\n'
                      'msgid_plural "%(n)d many"\nmsgstr[0] "a"\nmsgstr[1] ""\n"b"\n'
                      'msgstr[2] "c \\"q\\""\n'
                      '#~ msgid "gone"\n#~ msgstr "old"\n')
    assert len(sample) == 2
    assert header(sample) == {"Language": "ru"}
    assert sample[1].key == ("task", "one", "%(n)d many")
    assert sample[1].flags == ["fuzzy", "python-format"]
    assert sample[1].translations == ["a", "b", 'c "q"']


def test_the_catalogue_is_russian_with_russian_plurals(po: list[Entry]) -> None:
    head = header(po)
    assert head["Language"] == "ru"
    assert head["Content-Type"] == "text/plain; charset=UTF-8"
    assert head["Plural-Forms"] == RUSSIAN_PLURALS
    assert "fuzzy" not in po[0].flags
    assert len(messages(po)) > 100


def test_every_entry_is_translated_and_reviewed(po: list[Entry]) -> None:
    fuzzy = [e.key for e in messages(po) if "fuzzy" in e.flags]
    assert not fuzzy, f"fuzzy entries (compilemessages skips them): {fuzzy}"
    untranslated = [e.key for e in messages(po) if not all(t.strip() for t in e.translations)]
    assert not untranslated, f"untranslated entries: {untranslated}"
    wrong_forms = [e.key for e in messages(po)
                   if e.key[2] is not None and len(e.translations) != 3]
    assert not wrong_forms, f"plural entries without exactly 3 Russian forms: {wrong_forms}"
    keys = [e.key for e in messages(po)]
    assert len(keys) == len(set(keys)), "an entry appears twice"


def test_translations_keep_every_placeholder_and_tag(po: list[Entry]) -> None:
    wrong = []
    for entry in messages(po):
        _, singular, plural = entry.key
        originals = {*placeholders(singular), *placeholders(plural or "")}
        tags = sorted(re.findall(r"</?[a-z][^>]*>", singular))
        for text in entry.translations:
            kept = set(placeholders(text))
            # A plural form may leave out the number (Russian "one" also covers 21, 31...,
            # so it must not): every named placeholder of the msgid, nothing else.
            if kept != originals or sorted(re.findall(r"</?[a-z][^>]*>", text)) != tags:
                wrong.append((singular, text))
            if edges(text) != edges(singular):
                wrong.append((singular, text))
    assert not wrong, f"placeholders, tags or edges differ: {wrong}"


def test_everything_marked_for_translation_is_in_the_catalogue(po: list[Entry]) -> None:
    known = {e.key for e in messages(po)}
    missing = {key: where for key, where in source_messages().items() if key not in known}
    assert not missing, (
        "marked for translation but not in locale/ru/LC_MESSAGES/django.po (run makemessages; "
        "makemessages does not see calls through an alias like `gettext as _g`: import the "
        f"functions under their own names or as `_`): {missing}")


def test_the_source_scan_finds_python_and_template_strings() -> None:
    found = source_messages()
    assert (None, "Change password", None) in found  # {% translate %} in a template
    assert ("ticket", "won", None) in found  # pgettext_lazy in Python
    assert (None, "Your password has been changed.", None) in found  # gettext as _


def test_the_compiled_catalogue_says_what_the_po_says(po: list[Entry]) -> None:
    with MO.open("rb") as stream:
        compiled = gettext.GNUTranslations(stream)
    assert compiled.info().get("plural-forms") == RUSSIAN_PLURALS
    stale = []
    for entry in messages(po):
        context, singular, plural = entry.key
        if plural is None:
            got = [compiled.pgettext(context, singular) if context else
                   compiled.gettext(singular)]
        else:  # 1, 2 and 5 pick the three Russian forms
            got = [compiled.npgettext(context, singular, plural, n) if context else
                   compiled.ngettext(singular, plural, n) for n in (1, 2, 5)]
        if got != entry.translations:
            stale.append(singular)
    assert not stale, f"django.mo is older than django.po (run compilemessages): {stale}"


# --- the pages ------------------------------------------------------------------------------------


def signed_in(world: World) -> HttpClient:
    http = HttpClient()
    http.force_login(world.ann)
    return http


def test_the_account_page_is_in_russian_by_default(world: World) -> None:
    assert world.ann.language == "ru"
    page = signed_in(world).get("/account/").content.decode()
    assert "Сменить пароль" in page
    assert "Мой профиль" in page
    assert "Change password" not in page
    assert '<html lang="ru">' in page


def test_a_person_who_chose_english_sees_english(world: World) -> None:
    http = signed_in(world)
    response = http.post("/language/", {"language": "en"})
    assert response.status_code == 302
    world.ann.refresh_from_db()
    assert world.ann.language == "en"
    page = http.get("/account/").content.decode()
    assert "Change password" in page
    assert "My account" in page
    assert "Сменить пароль" not in page
    assert '<html lang="en">' in page
    http.post("/language/", {"language": "ru"})
    assert "Сменить пароль" in http.get("/account/").content.decode()


def russian_form(n: int) -> int:
    return 0 if n % 10 == 1 and n % 100 != 11 else (
        1 if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else 2)


def test_russian_plural_forms_are_picked_by_number(po: list[Entry]) -> None:
    from django.utils import translation

    numbers = (0, 1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111, 112, 1000)
    with MO.open("rb") as stream:
        compiled = gettext.GNUTranslations(stream)
    form_of: Callable[[int], int] = compiled.plural  # type: ignore[attr-defined]
    assert [form_of(n) for n in numbers] == [russian_form(n) for n in numbers]
    assert [russian_form(n) for n in (1, 21, 2, 22, 5, 11, 12)] == [0, 0, 1, 1, 2, 2, 2]
    wrong = []
    with translation.override("ru"):  # as Django picks them, next to its own catalogues
        for entry in (e for e in messages(po) if e.key[2] is not None):
            context, singular, plural = entry.key
            for n in numbers:
                got = (translation.npgettext(context, singular, plural or "", n) if context
                       else translation.ngettext(singular, plural or "", n))
                if got != entry.translations[russian_form(n)]:
                    wrong.append((singular, n, got))
    assert not wrong, f"plural forms picked wrongly: {wrong}"
