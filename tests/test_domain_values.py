"""Pure domain rules for values people type: durations, phones, emails, evidence, numbers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from estafeta.domain.codes import EvidenceKind
from estafeta.domain.contacts import normalise_email, normalise_phone
from estafeta.domain.durations import Duration
from estafeta.domain.errors import BadInput, EvidenceInvalid
from estafeta.domain.evidence import validate_evidence
from estafeta.domain.numbering import check_prefix, format_number, parse_number


@pytest.mark.parametrize(("text", "canonical", "wall"), [
    ("30m", "30m", timedelta(minutes=30)),
    ("90m", "1h 30m", timedelta(minutes=90)),
    ("2h", "2h", timedelta(hours=2)),
    ("1d 4h", "1d 4h", timedelta(days=1, hours=4)),
    ("1D4H", "1d 4h", timedelta(days=1, hours=4)),
    (45, "45m", timedelta(minutes=45)),
    ("0m", "0m", timedelta(0)),
])
def test_durations_are_read_as_people_write_them(text: str | int, canonical: str,
                                                 wall: timedelta) -> None:
    d = Duration.parse(text)
    assert str(d) == canonical
    assert d.wall_clock() == wall
    assert Duration.parse(str(d)) == d


@pytest.mark.parametrize("text", ["", "abc", "2 hours", "-1h", "1.5h", True, -5, "h"])
def test_a_duration_that_is_not_one_is_refused(text: str | int) -> None:
    with pytest.raises(BadInput) as err:
        Duration.parse(text)
    assert err.value.code == "bad_duration"


@pytest.mark.parametrize(("raw", "normal"), [
    ("8 (912) 345-67-89", "+79123456789"),
    ("+7 912 345 67 89", "+79123456789"),
    ("89123456789", "+79123456789"),
    ("9123456789", "+79123456789"),
    ("+7(495)123-45-67", "+74951234567"),
    ("8-495-123-45-67", "+74951234567"),
    ("+44 20 7946 0958", "+442079460958"),
])
def test_russian_phone_spellings_normalise_to_one_number(raw: str, normal: str) -> None:
    assert normalise_phone(raw) == normal


@pytest.mark.parametrize("raw", ["", "12", "phone", "+7 912", "8" * 50])
def test_a_phone_that_is_not_one_is_refused(raw: str) -> None:
    with pytest.raises(BadInput) as err:
        normalise_phone(raw)
    assert err.value.code == "bad_phone"


@pytest.mark.parametrize(("raw", "normal"), [
    ("Ivan@Example.COM", "ivan@example.com"),
    ("  mailto:ivan@example.com ", "ivan@example.com"),
    ("ivan@пример.рф", "ivan@xn--e1afmkfd.xn--p1ai"),
])
def test_emails_normalise(raw: str, normal: str) -> None:
    assert normalise_email(raw) == normal


@pytest.mark.parametrize("raw", ["", "ivan", "ivan@", "@example.com", "a b@example.com",
                                 "ivan@example", "x@y.z\nBcc: evil@example.com",
                                 "Ivan <ivan@example.com>", "a@b@example.com"])
def test_an_email_that_is_not_one_address_is_refused(raw: str) -> None:
    with pytest.raises(BadInput):
        normalise_email(raw)


@pytest.mark.parametrize(("kind", "raw", "stored"), [
    (EvidenceKind.NONE, None, None),
    (EvidenceKind.NONE, "", None),
    (EvidenceKind.TEXT, "  кредит, 5 лет  ", "кредит, 5 лет"),
    (EvidenceKind.NUMBER, "12", "12"),
    (EvidenceKind.NUMBER, "1,50", "1.5"),
    (EvidenceKind.NUMBER, 7, "7"),
    (EvidenceKind.MONEY, "2 950 000", "2950000.00"),
    (EvidenceKind.MONEY, "1 250 000,5", "1250000.50"),
    (EvidenceKind.MONEY, "3000000 ₽", "3000000.00"),
    (EvidenceKind.MONEY, "99,99 руб.", "99.99"),
    (EvidenceKind.DATE, "2026-12-07", "2026-12-07"),
    (EvidenceKind.DATE, "07.12.2026", "2026-12-07"),
    (EvidenceKind.DATE, date(2026, 12, 7), "2026-12-07"),
    (EvidenceKind.DOCUMENT_NUMBER, " КП-2026/0142 ", "КП-2026/0142"),
    (EvidenceKind.DOCUMENT_NUMBER, "№ 17", "№ 17"),
    (EvidenceKind.FILE, {"file_id": 3, "sha256": "a" * 64, "size": 10},
     {"file_id": 3, "sha256": "a" * 64, "size": 10}),
])
def test_evidence_of_each_kind_is_normalised(kind: EvidenceKind, raw: object,
                                             stored: object) -> None:
    assert validate_evidence(kind, raw) == stored


@pytest.mark.parametrize(("kind", "raw"), [
    (EvidenceKind.NONE, "something"),
    (EvidenceKind.TEXT, ""),
    (EvidenceKind.TEXT, "   "),
    (EvidenceKind.TEXT, 5),
    (EvidenceKind.TEXT, "x" * 2001),
    (EvidenceKind.TEXT, "bell\x07"),
    (EvidenceKind.NUMBER, "twelve"),
    (EvidenceKind.NUMBER, 1.5),
    (EvidenceKind.NUMBER, True),
    (EvidenceKind.MONEY, "-5"),
    (EvidenceKind.MONEY, "10.001"),
    (EvidenceKind.MONEY, "1e3"),
    (EvidenceKind.MONEY, "9" * 20),
    (EvidenceKind.DATE, "2026-13-01"),
    (EvidenceKind.DATE, "tomorrow"),
    (EvidenceKind.DOCUMENT_NUMBER, "no digits"),
    (EvidenceKind.DOCUMENT_NUMBER, "<script>1</script>"),
    (EvidenceKind.DOCUMENT_NUMBER, "1" * 65),
    (EvidenceKind.FILE, "report.pdf"),
    (EvidenceKind.FILE, {"file_id": 0, "sha256": "a" * 64, "size": 1}),
    (EvidenceKind.FILE, {"file_id": 1, "sha256": "zz", "size": 1}),
    (EvidenceKind.FILE, {"file_id": 1, "sha256": "a" * 64, "size": 0}),
])
def test_evidence_of_the_wrong_kind_is_refused(kind: EvidenceKind, raw: object) -> None:
    with pytest.raises(EvidenceInvalid):
        validate_evidence(kind, raw)


def test_ticket_numbers_are_formatted_and_parsed_back() -> None:
    assert format_number("Z", 2026, 123) == "Z-2026-000123"
    assert format_number("K2", 2027, 1234567) == "K2-2027-1234567"
    assert parse_number(" z-2026-000123 ") == ("Z", 2026, 123)
    assert parse_number("Z-2026-12") is None
    assert parse_number("1; DROP TABLE") is None


@pytest.mark.parametrize("prefix", ["", "z", "1Z", "Z-", "ZZZZZZZZZZZ", "Z;DROP", "З"])
def test_a_prefix_that_could_break_a_sequence_name_is_refused(prefix: str) -> None:
    with pytest.raises(BadInput):
        check_prefix(prefix)
