"""The demo dealership: people, pipelines, clients and months of history, all through the services.

``build_demo()`` writes the whole dealership in one transaction. Every row is made by the service
that owns it, at the moment it is said to have happened (``clock.frozen``), so every change has
its event and the history chains verify. Each ticket's life is a *story*: a generator that acts
on its ticket and yields the moment of its next step. A scheduler runs all stories in time order,
so executor rules, document numbers and checkpoints see the dealership as it was at that moment.
Stories still running when the history reaches the real "now" stop there: those tickets are the
open ones, and most of them get a next task due today or in the coming days, a few are left with
an overdue task on purpose.

The build is idempotent: the demo director's account marks a database that has the demo.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from estafeta.accounts.models import Team, User
from estafeta.accounts.selectors import absent_user_ids
from estafeta.accounts.services import absence_add, team_create, user_create, user_deactivate
from estafeta.clients.models import Client, Segment, Territory
from estafeta.clients.services import classification_ensure, client_create
from estafeta.core import clock
from estafeta.domain.codes import Role, TaskStatus, TicketStatus
from estafeta.domain.errors import Conflict
from estafeta.history.models import Event
from estafeta.history.services import checkpoint_create
from estafeta.intake.models import IntakeRecord
from estafeta.pipelines.services import pipeline_load
from estafeta.tasks.models import Task
from estafeta.tasks.services import TaskDraft, task_complete, task_plan, task_reschedule
from estafeta.tickets.models import StageVisit, Ticket
from estafeta.tickets.services import (
    activity_log,
    checklist_item_complete,
    document_issue,
    stage_close,
    stage_return,
    ticket_close_lost,
    ticket_close_won,
    ticket_create,
    ticket_reassign,
    ticket_reopen,
    ticket_void,
)

from .channels import INTAKE_CHANNELS, Arrived, Channels

PIPELINES_DIR = Path(__file__).resolve().parent / "pipelines"
PIPELINE_FILES = ("car-purchase.yaml", "fleet.yaml", "service-booking.yaml", "complaint.yaml")
DEMO_PIPELINES = tuple(name.removesuffix(".yaml") for name in PIPELINE_FILES)

# --- working time ----------------------------------------------------------------------------
# People act in working hours on working days (company time zone). The business calendar of the
# control issue will own this; until then the demo keeps Russia's fixed public holidays.

OPENS, CLOSES = 9, 19
HOLIDAYS = frozenset({(1, d) for d in range(1, 9)} | {(2, 23), (3, 8), (5, 1), (5, 9), (6, 12),
                                                     (11, 4)})


def company_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and (day.month, day.day) not in HOLIDAYS


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, dtime(hour, minute), tzinfo=company_tz()).astimezone(UTC)


def next_working(moment: datetime, rng: random.Random) -> datetime:
    """``moment`` if it falls in working hours, else a few minutes after the next opening."""
    local = moment.astimezone(company_tz())
    day = local.date()
    if is_working_day(day) and OPENS <= local.hour < CLOSES:
        return moment
    if not (is_working_day(day) and local.hour < OPENS):
        day += timedelta(days=1)
        while not is_working_day(day):
            day += timedelta(days=1)
    return _at(day, OPENS) + timedelta(minutes=rng.randint(0, 75))


def last_working(moment: datetime, rng: random.Random) -> datetime:
    """``moment`` if it falls in working hours, else a little before the last closing."""
    local = moment.astimezone(company_tz())
    day = local.date()
    if is_working_day(day) and OPENS <= local.hour < CLOSES:
        return moment
    if not (is_working_day(day) and local.hour >= CLOSES):
        day -= timedelta(days=1)
        while not is_working_day(day):
            day -= timedelta(days=1)
    return _at(day, CLOSES) - timedelta(minutes=rng.randint(5, 90))


def add_working_days(moment: datetime, days: int) -> datetime:
    local = moment.astimezone(company_tz())
    day = local.date()
    for _ in range(days):
        day += timedelta(days=1)
        while not is_working_day(day):
            day += timedelta(days=1)
    return datetime.combine(day, local.timetz()).astimezone(UTC)


def working_day_before(moment: datetime, days: int) -> date:
    day = moment.astimezone(company_tz()).date()
    for _ in range(days):
        day -= timedelta(days=1)
        while not is_working_day(day):
            day -= timedelta(days=1)
    return day


def working_days(start: datetime, end: datetime) -> Iterator[date]:
    tz = company_tz()
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    while day <= last:
        if is_working_day(day):
            yield day
        day += timedelta(days=1)


def rub(amount: int | Decimal) -> str:
    """Money as people write it: ``2 950 000``."""
    return f"{int(amount):,}".replace(",", " ")


def ddmmyyyy(moment: datetime | date) -> str:
    day = moment.astimezone(company_tz()).date() if isinstance(moment, datetime) else moment
    return day.strftime("%d.%m.%Y")


# --- people, names, places -------------------------------------------------------------------

RETAIL, CORPORATE, CREDIT = "Розничные продажи", "Корпоративные продажи", "Кредитный отдел"
PASSWORD = "Estafeta-demo-2026"  # noqa: S105 - the demo's published password
DIRECTOR = "morozov"  # the marker: a database with this user has the demo
STAFF_DOMAIN = "avtosever.example"
LEAVER, VACATIONER = "popov", "smirnov"


@dataclass(frozen=True)
class Person:
    username: str
    role: str
    team: str | None
    first_name: str
    last_name: str
    note: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


PEOPLE = (
    Person("admin", "admin", None, "Павел", "Егоров", "настройка в /admin/"),
    Person("morozov", "director", None, "Алексей", "Морозов"),
    Person("sokolova", "head", RETAIL, "Елена", "Соколова",
           f"руководитель: {RETAIL}, {CREDIT}; жалобы"),
    Person("volkov", "head", CORPORATE, "Дмитрий", "Волков", f"руководитель: {CORPORATE}"),
    Person("ivanov", "seller", RETAIL, "Сергей", "Иванов"),
    Person("petrova", "seller", RETAIL, "Анна", "Петрова"),
    Person("smirnov", "seller", RETAIL, "Максим", "Смирнов"),
    Person("kuznetsova", "seller", RETAIL, "Ольга", "Кузнецова"),
    Person("belova", "seller", RETAIL, "Мария", "Белова"),
    Person("popov", "seller", RETAIL, "Артём", "Попов"),
    Person("lebedev", "seller", CORPORATE, "Андрей", "Лебедев"),
    Person("kozlova", "seller", CORPORATE, "Наталья", "Козлова"),
    Person("novikov", "seller", CORPORATE, "Игорь", "Новиков"),
    Person("fedorova", "seller", CREDIT, "Татьяна", "Фёдорова", "кредитный специалист"),
    Person("orlova", "operator", None, "Светлана", "Орлова", "регистрирует обращения"),
)
TEAMS = ((RETAIL, "sokolova"), (CREDIT, "sokolova"), (CORPORATE, "volkov"))


def demo_logins() -> list[Person]:
    """The accounts people can log in with (the seller who leaves during the history is not)."""
    return [p for p in PEOPLE if p.username != LEAVER]


SEGMENTS = (("retail", "Розничные клиенты"), ("fleet", "Корпоративный автопарк"),
            ("taxi", "Такси"))
TERRITORIES = (  # code, name, weight of clients living or working there
    ("msk-sao", "Москва, САО", 24), ("msk-svao", "Москва, СВАО", 16),
    ("msk-szao", "Москва, СЗАО", 10), ("msk-cao", "Москва, ЦАО", 6), ("khimki", "Химки", 14),
    ("mytishchi", "Мытищи", 10), ("dolgoprudny", "Долгопрудный", 8), ("lobnya", "Лобня", 5),
    ("zelenograd", "Зеленоград", 7),
)

MALE = ("Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья",
        "Кирилл", "Михаил", "Никита", "Роман", "Евгений", "Владимир", "Павел", "Игорь", "Олег",
        "Виктор", "Константин", "Денис", "Антон", "Григорий", "Тимур", "Вадим")
FEMALE = ("Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Екатерина",
          "Светлана", "Юлия", "Анастасия", "Дарья", "Марина", "Ксения", "Виктория", "Полина",
          "Алина", "Вера")
SURNAMES = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
            "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
            "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев",
            "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев",
            "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров",
            "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков", "Сорокин",
            "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков",
            "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев", "Герасимов", "Богданов",
            "Осипов", "Сидоров")
PATRONYMICS = (("Александрович", "Александровна"), ("Дмитриевич", "Дмитриевна"),
               ("Сергеевич", "Сергеевна"), ("Андреевич", "Андреевна"),
               ("Алексеевич", "Алексеевна"), ("Игоревич", "Игоревна"), ("Олегович", "Олеговна"),
               ("Викторович", "Викторовна"), ("Владимирович", "Владимировна"),
               ("Павлович", "Павловна"), ("Михайлович", "Михайловна"),
               ("Николаевич", "Николаевна"), ("Евгеньевич", "Евгеньевна"),
               ("Юрьевич", "Юрьевна"), ("Иванович", "Ивановна"))
MOBILE_CODES = ("903", "905", "909", "915", "916", "925", "926", "929", "963", "977", "985",
                "999")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")

_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"],
    strict=True))


def translit(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())


@dataclass(frozen=True)
class PersonName:
    first: str
    patronymic: str
    last: str

    @property
    def full(self) -> str:
        return f"{self.last} {self.first} {self.patronymic}"


def person_name(rng: random.Random) -> PersonName:
    male = rng.random() < 0.6
    surname = rng.choice(SURNAMES)
    patronymic = rng.choice(PATRONYMICS)[0 if male else 1]
    if male:
        return PersonName(rng.choice(MALE), patronymic, surname)
    return PersonName(rng.choice(FEMALE), patronymic, surname + "а")


def mobile(rng: random.Random) -> str:
    n = rng.randrange(10_000_000)
    return f"+7 {rng.choice(MOBILE_CODES)} {n // 10000:03d}-{n // 100 % 100:02d}-{n % 100:02d}"


def person_email(rng: random.Random, name: PersonName) -> str:
    local = rng.choice((f"{translit(name.last)}.{translit(name.first)}",
                        f"{translit(name.first)}.{translit(name.last)}",
                        f"{translit(name.first)[0]}{translit(name.last)}"))
    if rng.random() < 0.5:
        local += str(rng.randint(70, 99) if rng.random() < 0.5 else rng.randint(1, 999))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


@dataclass(frozen=True)
class Company:
    name: str
    slug: str
    segment: str
    territory: str
    key_account: bool = False


COMPANIES = (
    Company("ООО «СтройТехМонтаж»", "stroytekhmontazh", "fleet", "khimki", True),
    Company("АО «Северный терминал»", "sevterminal", "fleet", "lobnya", True),
    Company("ООО «ЛогистикПро»", "logistikpro", "fleet", "msk-sao", True),
    Company("ООО «АгроСнаб-Подмосковье»", "agrosnab", "fleet", "dolgoprudny"),
    Company("ООО «ТехноСервис Плюс»", "tekhnoservis", "fleet", "msk-svao"),
    Company("ООО «ПромАльянс»", "promalyans", "fleet", "mytishchi"),
    Company("ООО «СеверСтройИнвест»", "sevstroyinvest", "fleet", "msk-szao"),
    Company("ООО «ФармДистрибуция»", "farmdistr", "fleet", "khimki"),
    Company("ООО «ОхранаПрофи»", "okhranaprofi", "fleet", "zelenograd"),
    Company("ООО «КлинингСити»", "kliningsiti", "fleet", "msk-cao"),
    Company("ООО «Энергомонтаж-М»", "energomontazh", "fleet", "mytishchi"),
    Company("ООО «Такси Север»", "taxi-sever", "taxi", "msk-sao", True),
    Company("ООО «ГородТранс»", "gorodtrans", "taxi", "msk-svao", True),
    Company("ООО «Таксопарк №1»", "taksopark1", "taxi", "mytishchi"),
    Company("ООО «Быстрое такси»", "bystroe-taxi", "taxi", "khimki", True),
    Company("ООО «Комфорт-Драйв»", "komfort-drayv", "taxi", "zelenograd"),
    Company("ООО «Аэротрансфер»", "aerotransfer", "taxi", "lobnya"),
    Company("ИП Гасанов Рустам Алиевич", "gasanov-taxi", "taxi", "dolgoprudny"),
)
BUYER_POSITIONS = ("начальник отдела закупок", "главный механик", "директор по логистике",
                   "руководитель автопарка", "генеральный директор", "заместитель директора")

# model, lowest and highest price (RUB)
CARS = (
    ("Lada Vesta", 1_450_000, 1_900_000), ("Lada Niva Travel", 1_250_000, 1_450_000),
    ("Haval Jolion", 2_100_000, 2_600_000), ("Haval F7", 2_800_000, 3_400_000),
    ("Chery Tiggo 4", 1_900_000, 2_300_000), ("Chery Tiggo 7 Pro Max", 2_600_000, 3_100_000),
    ("Geely Coolray", 2_200_000, 2_700_000), ("Geely Monjaro", 4_200_000, 4_900_000),
    ("Changan CS55 Plus", 2_400_000, 2_900_000), ("Tank 300", 4_900_000, 5_700_000),
    ("Omoda C5", 2_100_000, 2_600_000), ("Exeed TXL", 3_900_000, 4_500_000),
)
FLEET_CARS = (("Lada Vesta", 1_450_000, 1_650_000), ("Lada Largus", 1_500_000, 1_750_000),
              ("Haval Jolion", 2_050_000, 2_300_000), ("Chery Tiggo 4", 1_850_000, 2_100_000),
              ("ГАЗель NEXT", 2_900_000, 3_500_000))
SERVICES = (("ТО-1", 9_500, 16_000), ("ТО-2", 18_000, 32_000), ("Сезонная замена шин", 4_500,
            8_000), ("Диагностика ходовой части", 3_000, 6_500), ("Замена тормозных колодок",
            7_500, 14_000), ("Кузовной ремонт", 25_000, 90_000))
BANKS = ("Сбербанк", "ВТБ", "Альфа-Банк", "Газпромбанк", "Совкомбанк", "Т-Банк")
COMPLAINTS = (
    ("Задержка выдачи автомобиля", "Автомобиль не подготовили к оговорённой дате выдачи",
     "Сбой логистики: автомобиль пришёл на склад на 3 дня позже",
     "Бесплатный комплект ковриков и полный бак; извинения от руководителя"),
    ("Ошибка в счёте", "В счёте указана комплектация дороже согласованной",
     "Ошибка при выборе комплектации в учётной системе", "Счёт переоформлен, разница возвращена"),
    ("Долгое ожидание в сервисе", "Клиент ждал выдачи автомобиля после ТО больше двух часов",
     "Не хватило мастеров в смене", "Скидка 15% на следующее ТО"),
    ("Некорректное общение менеджера", "Менеджер не перезвонил в обещанное время",
     "Менеджер перепутал время звонка", "Беседа с менеджером, извинения клиенту"),
    ("Царапина после мойки", "После предпродажной мойки на двери появилась царапина",
     "Повреждение при мойке, подтверждено фото", "Полировка за счёт автоцентра"),
)


# --- the result --------------------------------------------------------------------------------


@dataclass
class DemoResult:
    created: bool
    seconds: float = 0.0
    tickets: dict[str, int] = field(default_factory=dict)
    events: int = 0
    overdue_tasks: int = 0
    intake: dict[str, int] = field(default_factory=dict)  # arrivals by channel

    def summary(self) -> str:
        if not self.created:
            return "the demo dealership is already in this database; nothing was built"
        counts = ", ".join(f"{status} {n}" for status, n in self.tickets.items())
        total = sum(self.tickets.values())
        arrivals = ", ".join(f"{channel} {n}" for channel, n in sorted(self.intake.items()))
        return (f"built in {self.seconds:.1f}s: {total} tickets ({counts}), {self.events:,} "
                f"events, {self.overdue_tasks} overdue open task(s); "
                f"{sum(self.intake.values())} requests came in through intake ({arrivals})")


def demo_exists() -> bool:
    return User.objects.filter(username=DIRECTOR).exists()


def build_demo(*, months: float = 6, scale: float = 1.0, seed: int = 2026,
               end: datetime | None = None,
               progress: Callable[[str], None] | None = None,
               mail_dir: Path | None = None) -> DemoResult:
    """Build the demo dealership unless it is there already (then return ``created=False``).

    ``months`` of history end at ``end`` (default: now); ``scale`` multiplies the number of
    requests (1.0 is a dealership of this size; tests use less). The same ``seed`` builds the same
    dealership. Everything is one transaction: a failed build leaves nothing behind (but the
    maildir folders, made under ``mail_dir``, default ``<data dir>/mail``).
    """
    started = time.monotonic()
    end = end or timezone.now()
    say = progress or (lambda message: None)
    with transaction.atomic():
        if connection.vendor == "postgresql":  # two demo builds at once: the second waits, skips
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('estafeta-demo'))")
        if demo_exists():
            return DemoResult(created=False)
        _refuse_collisions()
        rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
        dealership = Dealership(rng=rng, end=end, months=months, scale=scale, say=say,
                                mail_dir=mail_dir)
        dealership.build()
        with clock.frozen(end):
            checkpoint_create()
    result = DemoResult(created=True, seconds=time.monotonic() - started)
    tickets = Ticket.objects.filter(pipeline__code__in=DEMO_PIPELINES)
    for status in TicketStatus:
        result.tickets[status.value] = tickets.filter(status=status).count()
    result.events = Event.objects.count()
    result.overdue_tasks = Task.objects.filter(status=TaskStatus.OPEN, due_at__lt=end,
                                               ticket__pipeline__code__in=DEMO_PIPELINES).count()
    result.intake = dict(IntakeRecord.objects.values_list("channel").annotate(n=Count("pk"))
                         .order_by())
    return result


def _refuse_collisions() -> None:
    taken = list(User.objects.filter(username__in=[p.username for p in PEOPLE])
                 .values_list("username", flat=True))
    teams = list(Team.objects.filter(name__in=[name for name, _ in TEAMS])
                 .values_list("name", flat=True))
    if taken or teams:
        what = ", ".join([*taken, *teams])
        raise Conflict(f"this database already has {what} but not the demo; build the demo into "
                       "an empty database (set ESTAFETA_DATA_DIR or DATABASE_URL)",
                       code="demo_collision")


# --- the scheduler -----------------------------------------------------------------------------


class Story:
    """One ticket's life (or a piece of the dealership's life), run by the scheduler.

    ``run(story)`` is a generator yielding the moment of each of its steps (the first is usually
    ``story.start``); the code after a yield runs with the clock frozen at that moment.
    """

    def __init__(self, name: str, run: Callable[[Story], Generator[datetime, None, Any]],
                 start: datetime, *, neglect: bool = False, hold_at: str | None = None) -> None:
        self.name = name
        self.start = start
        self.ticket: Ticket | None = None
        self.neglect = neglect  # still open when the history ends: leave its task overdue
        self.hold_at = hold_at  # a showcase: no losses, and it stops in this stage
        self.steps = run(self)

    @property
    def calm(self) -> bool:
        """Random setbacks (losses, long pauses) happen only to ordinary stories."""
        return self.hold_at is None


class Scheduler:
    """Runs stories in time order. A story whose next step falls after ``end`` stops there;
    ``on_stop`` may hand back a last, short story for it (its tail)."""

    def __init__(self, end: datetime, on_stop: Callable[[Story, datetime], Story | None],
                 on_moment: Callable[[datetime], None] | None = None) -> None:
        self.end = end
        self.on_stop = on_stop
        self.on_moment = on_moment
        self._heap: list[tuple[datetime, int, Story]] = []
        self._order = itertools.count()

    def add(self, story: Story) -> None:
        first = next(story.steps, None)
        if first is not None and first <= self.end:
            heapq.heappush(self._heap, (first, next(self._order), story))

    def run(self) -> None:
        while self._heap:
            moment, _, story = heapq.heappop(self._heap)
            if self.on_moment:
                self.on_moment(moment)
            with clock.frozen(moment):
                following = next(story.steps, None)
            if following is None:
                continue
            if following < moment:  # pragma: no cover - a bug in a story, not in the data
                raise RuntimeError(f"the {story.name} story went back in time")
            if following > self.end:
                story.steps.close()
                tail = self.on_stop(story, moment)
                if tail is not None:
                    self.add(tail)
                continue
            heapq.heappush(self._heap, (following, next(self._order), story))


# --- the dealership ----------------------------------------------------------------------------


class Dealership:
    """Builds the people, the configuration and the history (inside the caller's transaction)."""

    def __init__(self, *, rng: random.Random, end: datetime, months: float, scale: float,
                 say: Callable[[str], None], mail_dir: Path | None = None) -> None:
        self.rng = rng
        self.end = end
        self.start = end - timedelta(days=round(months * 30.4))
        self.scale = scale
        self.say = say
        self.users: dict[str, User] = {}
        self.by_pk: dict[int, User] = {}
        self.teams: dict[str, Team] = {}
        self.segments: dict[str, Segment] = {}
        self.territories: dict[str, Territory] = {}
        self.companies: list[Client] = []
        self.persons: list[Client] = []
        self.serials: dict[tuple[str, int], int] = {}
        self.tickets_made = 0
        self._month: tuple[int, int] | None = None
        self.channels = Channels(self, mail_dir)

    # --- setup ---

    def build(self) -> None:
        setup_at = next_working(_at(self.start.astimezone(company_tz()).date()
                                    - timedelta(days=21), 10), self.rng)
        with clock.frozen(setup_at):
            self._people()
            self._reference()
            self._pipelines()
            self._companies()
            self.channels.setup(self.users["admin"])
        self.say(f"people, teams, {len(PIPELINE_FILES)} pipelines, {len(self.companies)} "
                 f"companies and the intake channels set up ({ddmmyyyy(setup_at)})")
        scheduler = Scheduler(self.end, self._on_stop, self._on_moment)
        for story in self._plan():
            scheduler.add(story)
        scheduler.run()
        self.say(f"history written up to {timezone.localtime(self.end):%d.%m.%Y %H:%M}: "
                 f"{self.tickets_made} tickets")

    def _people(self) -> None:
        admin_spec = PEOPLE[0]
        admin = self._user(admin_spec, None, None)
        for spec in PEOPLE[1:]:
            if spec.role == Role.HEAD:
                self._user(spec, admin, None)
        for name, head in TEAMS:
            self.teams[name] = team_create(actor=admin, name=name, head=self.users[head])
        for spec in PEOPLE[1:]:
            if spec.role != Role.HEAD:
                self._user(spec, admin, self.teams[spec.team] if spec.team else None)
        # Heads were loaded before their teams existed: read them again with their team.
        for spec in PEOPLE:
            if spec.role == Role.HEAD:
                self._remember(User.objects.get(username=spec.username))

    def _user(self, spec: Person, actor: User | None, team: Team | None) -> User:
        user = user_create(actor=actor, username=spec.username, role=spec.role,
                           password=PASSWORD, team=team,
                           email=f"{spec.username}@{STAFF_DOMAIN}", first_name=spec.first_name,
                           last_name=spec.last_name)
        self._remember(user)
        return user

    def _remember(self, user: User) -> None:
        self.users[user.username] = user
        self.by_pk[user.pk] = user

    def _reference(self) -> None:
        admin = self.users["admin"]
        for code, name in SEGMENTS:
            self.segments[code] = classification_ensure(actor=admin, model=Segment, code=code,
                                                        name=name)
        for code, name, _ in TERRITORIES:
            self.territories[code] = classification_ensure(actor=admin, model=Territory,
                                                           code=code, name=name)

    def _pipelines(self) -> None:
        for filename in PIPELINE_FILES:
            pipeline_load(actor=self.users["admin"], text=(PIPELINES_DIR / filename).read_bytes(),
                          source=filename)

    def _companies(self) -> None:
        rng = self.rng
        for company in COMPANIES:
            self.companies.append(client_create(
                actor=self.users["volkov"], name=company.name, kind="company",
                phones=[f"+7 {rng.choice(('495', '498'))} {rng.randint(200, 999)}-"
                        f"{rng.randint(10, 99)}-{rng.randint(10, 99)}", mobile(rng)],
                emails=[f"{rng.choice(('zakupki', 'info', 'office'))}@{company.slug}.example"],
                segment=self.segments[company.segment],
                territory=self.territories[company.territory], key_account=company.key_account,
                notes="Ключевой клиент: ежегодное обновление автопарка"
                if company.key_account else ""))

    # --- planning ---

    def _plan(self) -> Iterator[Story]:
        """Requests arriving on each working day; the staff's own events; monthly checkpoints.

        The dealership is growing: requests per day rise from 60% to 140% of the average over
        the history (and more recent requests mean a fuller pipeline today).
        """
        rng = self.rng
        rates = ((self._car, 1.8), (self._service, 0.65), (self._fleet, 0.25),
                 (self._complaint, 0.07), (self._spam, 0.04))
        span = (self.end - self.start).total_seconds()
        for day in working_days(self.start, self.end):
            growth = 0.6 + 0.8 * (_at(day, OPENS) - self.start).total_seconds() / span
            for run, rate in rates:
                for _ in range(_poisson(rng, rate * growth * self.scale)):
                    at = _at(day, OPENS) + timedelta(minutes=rng.randint(0, 60 * (CLOSES - OPENS)
                                                                         - 20))
                    if at < self.end:
                        yield Story(run.__name__.strip("_"), run, at,
                                    neglect=rng.random() < 0.25)
        yield from self._showcase()
        flagged_at = last_working(self.end - timedelta(hours=rng.uniform(2, 5)), rng)
        yield Story("possible duplicate", lambda s: self.channels.stranger_with_a_number(s.start),
                    max(flagged_at, self.start))
        first = self.start + timedelta(days=1)
        yield Story("staff", self._staff, first)
        yield Story("checkpoints", self._checkpoints, first)

    def _showcase(self) -> Iterator[Story]:
        """One request held in every open stage of every pipeline when the history ends, so
        that each stage of each board has something in it. Later stages start earlier."""
        rng = self.rng
        held = ((self._car, ("new", "qualification", "presentation", "quote", "credit",
                             "contract", "delivery"), 4),
                (self._fleet, ("request", "proposal", "approval", "contract", "delivery"), 6),
                (self._service, ("request", "confirmed", "visit"), 3),
                (self._complaint, ("received", "investigation", "resolution"), 2))
        for run, stages, pace in held:
            for k, stage in enumerate(stages):
                if k == 0:  # the newest car request: a missed call, its call-back still due
                    hours = rng.uniform(1, 3) / (3 if run == self._car else 1)
                    at = last_working(self.end - timedelta(hours=hours), rng)
                else:
                    at = _at(working_day_before(self.end, pace * k + 1), rng.randint(10, 15),
                             rng.randint(0, 59))
                yield Story(f"{run.__name__.strip('_')} held in {stage}", run,
                            max(at, self.start), hold_at=stage)

    @property
    def after_end(self) -> datetime:
        """Yielded by a story that should stop where it is."""
        return self.end + timedelta(days=1)

    def _on_moment(self, moment: datetime) -> None:
        local = timezone.localtime(moment)
        month = (local.year, local.month)
        if month != self._month:
            if self._month is not None:
                self.say(f"  {self._month[1]:02d}.{self._month[0]}: {self.tickets_made} "
                         "tickets so far")
            self._month = month

    # --- helpers every story uses ---

    def later(self, *, minutes: int = 0, hours: float = 0, days: int = 0) -> datetime:
        moment = clock.now() + timedelta(minutes=minutes, hours=hours)
        if days:
            moment = add_working_days(moment, days)
        return next_working(moment, self.rng)

    def user(self, pk: int) -> User:
        return self.by_pk[pk]

    def fresh(self, ticket: Ticket) -> Ticket:
        return Ticket.objects.select_related("stage", "version", "pipeline").get(pk=ticket.pk)

    def visit(self, ticket: Ticket) -> StageVisit:
        return StageVisit.objects.get(ticket=ticket, closed_at__isnull=True)

    def executor(self, ticket: Ticket) -> User:
        executor_id = self.visit(ticket).executor_id
        assert executor_id is not None
        return self.user(executor_id)

    def owner(self, ticket: Ticket) -> User:
        return self.user(self.fresh(ticket).owner_id)

    def head(self, ticket: Ticket) -> User:
        team = self.fresh(ticket).team_id
        return next(self.users[h] for name, h in TEAMS if self.teams[name].pk == team)

    def open_tasks(self, ticket: Ticket) -> list[Task]:
        return list(Task.objects.filter(ticket=ticket, status=TaskStatus.OPEN).order_by("pk"))

    def sellers(self, team: str) -> list[User]:
        """The team's sellers who are at work now (active, not on holiday)."""
        pks = list(User.objects.filter(team=self.teams[team], role=Role.SELLER, is_active=True)
                   .order_by("pk").values_list("pk", flat=True))
        absent = absent_user_ids(pks, clock.now())
        return [self.user(pk) for pk in pks if pk not in absent]

    def serial(self, prefix: str) -> str:
        """Document numbers as the dealership writes them: КП-2026/0142."""
        year = timezone.localtime(clock.now()).year
        key = (prefix, year)
        self.serials[key] = self.serials.get(key, self.rng.randint(60, 140)) + 1
        return f"{prefix}-{year}/{self.serials[key]:04d}"

    def new_person(self, actor: User | None) -> Client:
        rng = self.rng
        name = person_name(rng)
        codes = [code for code, _, _ in TERRITORIES]
        weights = [w for _, _, w in TERRITORIES]
        client = client_create(
            actor=actor, name=name.full, kind="person", phones=[mobile(rng)],
            emails=[person_email(rng, name)] if rng.random() < 0.75 else [],
            segment=self.segments["retail"],
            territory=self.territories[rng.choices(codes, weights)[0]])
        self.persons.append(client)
        return client

    def known_person(self) -> Client | None:
        return self.rng.choice(self.persons) if self.persons else None

    def register(self, *, pipeline: str, channel: str, subject: str, client: Client | None,
                 amount: Any = None, description: str = "", seller: User | None = None
                 ) -> Ticket:
        """A request arrives: the operator (phone, email, messenger), the web form (the system)
        or a seller meeting a walk-in client registers it, with a new client if needed."""
        actor: User | None
        if channel == "walk_in":
            actor = seller
        elif channel in ("web_form", "api"):
            actor = None
        else:
            actor = self.users["orlova"]
        if client is None:
            client = self.new_person(actor)
        ticket = ticket_create(actor=actor, pipeline=pipeline, client=client, channel=channel,
                               subject=subject, description=description, amount=amount,
                               owner=seller if channel == "walk_in" else None)
        self.tickets_made += 1
        return ticket

    def items(self, ticket: Ticket, stage: str, items: dict[str, Any],
              actor: User | None = None) -> None:
        actor = actor or self.executor(ticket)
        for code, evidence in items.items():
            checklist_item_complete(actor=actor, ticket=ticket, stage=stage, item=code,
                                    evidence=evidence)

    def advance(self, ticket: Ticket, stage: str, items: dict[str, Any], *,
                to: str | None = None, amount: Any = None, next_task: TaskDraft | None = None,
                contact: str | None = None) -> None:
        """Complete the stage's checklist, close it, then mark the work that led here done.

        The tasks open before the move are completed after it: the next stage's task is then
        already there, so the rule "an open ticket always has a next task" needs no stand-in.
        Now and then the head closes the stage instead of the executor (a recorded override).
        """
        actor = self.executor(ticket)
        if self.rng.random() < 0.03:
            actor = self.head(ticket)
        self.items(ticket, stage, items, actor)
        before = self.open_tasks(ticket)
        stage_close(actor=actor, ticket=ticket, stage=stage, to=to, amount=amount,
                    next_task=next_task)
        for task in before:
            self.complete(task, contact=contact)

    def complete(self, task: Task, *, contact: str | None = None, outcome: str = "done",
                 successor: TaskDraft | None = None, result: str = "") -> None:
        duration = None
        if task.kind == "call" and (contact or "connected") == "connected":
            duration = self.rng.randint(60, 720)
        elif task.kind == "call":
            duration = 0
        elif task.kind in ("meeting", "video") and outcome == "done":
            duration = self.rng.randint(20, 90) * 60
        task_complete(actor=self.user(task.assignee_id), task=task, outcome=outcome,
                      result=result, contact_outcome=contact if task.kind == "call" else None,
                      duration_seconds=duration, successor=successor)

    def call_back(self, ticket: Ticket, *, result: str, title: str = "Перезвонить клиенту",
                  hours: float = 3, outcome: str = "no_answer") -> None:
        """The current call did not settle anything: mark it and plan the next one."""
        tasks = self.open_tasks(ticket)
        task = next((t for t in reversed(tasks) if t.kind == "call"), tasks[-1])
        due = self.later(hours=hours)
        self.complete(task, contact=outcome if task.kind == "call" else None,
                      successor=TaskDraft(kind="call", title=title,
                                          due_at=due + timedelta(minutes=self.rng.randint(0, 40))),
                      result=result)

    def contact(self, ticket: Ticket, kind: str, direction: str, outcome: str, note: str = "",
                actor: User | None = None) -> None:
        duration = None
        if kind == "call":
            duration = self.rng.randint(45, 600) if outcome == "connected" else 0
        elif kind in ("meeting", "video"):
            duration = self.rng.randint(20, 90) * 60
        activity_log(actor=actor or self.executor(ticket), ticket=ticket, kind=kind,
                     direction=direction, outcome=outcome, duration_seconds=duration, note=note)

    def lose(self, ticket: Ticket, reason: str, note: str, actor: User | None = None) -> None:
        ticket_close_lost(actor=actor or self.executor(ticket), ticket=ticket, reason=reason,
                          note=note)

    def maybe_reassign(self, ticket: Ticket, team: str, probability: float = 0.04) -> None:
        if self.rng.random() >= probability:
            return
        owner = self.owner(ticket)
        others = [u for u in self.sellers(team) if u.pk != owner.pk]
        if not others:
            return
        reason = self.rng.choice(("Клиент попросил другого менеджера",
                                  "Перераспределение нагрузки в отделе",
                                  "Клиенту удобнее встречаться в другом шоуруме"))
        ticket_reassign(actor=self.head(ticket), ticket=ticket, owner=self.rng.choice(others),
                        reason=reason)

    def pause(self, ticket: Ticket, days: int, *, title: str, result: str
              ) -> Generator[datetime, None, None]:
        """The client takes ``days`` working days to decide; the executor keeps in touch by
        phone every few days (each call planned by the previous one)."""
        rng = self.rng
        until = next_working(add_working_days(clock.now(), days), rng)
        due = self.later(days=rng.randint(2, 4))
        self.complete(self.open_tasks(ticket)[-1], contact="connected",
                      successor=TaskDraft(kind="call", title=title, due_at=due))
        while due < until:
            yield due + timedelta(minutes=rng.randint(0, 90))
            due = self.later(days=rng.randint(2, 4))
            reached = rng.random() < 0.75
            self.complete(self.open_tasks(ticket)[-1],
                          contact="connected" if reached else "no_answer",
                          result=result if reached else "Не дозвонился",
                          successor=TaskDraft(kind="call", title=title, due_at=due))
        yield max(until, next_working(clock.now() + timedelta(minutes=30), rng))

    def lost_for_now(self, ticket: Ticket, reason: str, note: str, reopen: bool
                     ) -> Generator[datetime, None, bool]:
        """Lose the ticket; when ``reopen``, the client comes back weeks later and the head
        reopens it (True: the story goes on in the stage it was lost in)."""
        self.lose(ticket, reason, note)
        if not reopen:
            return False
        yield self.later(days=self.rng.randint(10, 25))
        ticket_reopen(actor=self.head(ticket), ticket=ticket,
                      reason="Клиент вернулся: готов продолжить покупку")
        self.contact(ticket, "call", "in", "connected", note="Клиент перезвонил сам")
        yield self.later(hours=self.rng.randint(1, 24))
        return True

    # --- the end of the history ---

    def _on_stop(self, story: Story, last: datetime) -> Story | None:
        """A story still running at the real now: its ticket stays open. Unless it is one of the
        neglected few, its executor touched it recently and planned the next step."""
        ticket = story.ticket
        if ticket is None or story.neglect or not self.fresh(ticket).is_open:
            return None
        moment = last_working(self.end - timedelta(minutes=self.rng.randint(0, 240)), self.rng)
        moment = max(moment, last + timedelta(minutes=10))
        if moment >= self.end:
            return None
        return Story(f"{story.name} (last touch)", lambda tail: self._tail(tail, ticket), moment)

    def _tail(self, s: Story, ticket: Ticket) -> Generator[datetime, None, None]:
        """Overdue tasks are done (calls, with a follow-up) or moved (meetings, paperwork)."""
        yield s.start
        now = clock.now()
        for task in self.open_tasks(ticket):
            if task.due_at >= now:
                continue
            due = next_working(add_working_days(now, self.rng.choice((0, 1, 1, 2, 3))),
                               self.rng) + timedelta(minutes=self.rng.randint(30, 240))
            if due < now + timedelta(minutes=30):
                due = next_working(now + timedelta(hours=2), self.rng)
            due = next_working(due, self.rng)
            if task.kind in ("call", "email"):
                reached = self.rng.random() < 0.7
                self.complete(task, contact="connected" if reached else "no_answer",
                              successor=TaskDraft(kind="call", title=self.rng.choice((
                                  "Перезвонить клиенту", "Уточнить решение клиента",
                                  "Согласовать следующий шаг")), due_at=due),
                              result="Договорились созвониться" if reached else "Не дозвонился")
            else:
                task_reschedule(actor=self.user(task.assignee_id), task=task, due_at=due,
                                reason=self.rng.choice((
                                    "Клиент попросил перенести", "Ждём ответа клиента",
                                    "Перенос по просьбе клиента", "Ждём документы от клиента")))

    # --- stories ---

    def _car(self, s: Story) -> Generator[datetime, None, None]:
        rng = self.rng
        yield s.start
        model, low, high = rng.choice(CARS)
        price = round(rng.uniform(low, high) / 10_000) * 10_000
        channel = rng.choices(("phone", "web_form", "walk_in", "messenger", "email"),
                              (35, 25, 20, 10, 10))[0]
        seller = rng.choice(self.sellers(RETAIL)) if channel == "walk_in" else None
        subject = rng.choice((f"Покупка {model}", f"Интересует {model}",
                              f"Тест-драйв {model}", f"Запрос цены на {model}"))
        client = self.known_person() if rng.random() < 0.05 else None
        description = rng.choice(("", "Просит перезвонить после 12:00",
                                  "Интересует комплектация с полным приводом",
                                  "Есть автомобиль в трейд-ин"))
        arrived: Arrived | None = None
        if s.hold_at == "new":  # the newest request: a call nobody answered, to call back
            channel = "phone"
        if client is None and channel in INTAKE_CHANNELS:  # through the dealership's channels
            arrived = self.channels.arrive(
                channel=channel, model=model, subject=subject, text=description,
                missed=channel == "phone" and (s.hold_at == "new" or rng.random() < 0.2))
            if arrived is None:  # a known phone or email: it went onto that client's ticket
                return
            ticket = arrived.ticket
            self.tickets_made += 1
        else:
            ticket = self.register(pipeline="car-purchase", channel=channel, subject=subject,
                                   client=client, seller=seller, description=description)
        s.ticket = ticket

        if s.hold_at == "new":
            yield self.after_end
        if s.calm and rng.random() < 0.025:  # the same person also left a request online
            yield self.later(minutes=rng.randint(3, 30))
            if arrived is not None:  # intake puts it on the open ticket (and plans a reply)
                self.channels.same_client_by_form(ticket, model)
            else:  # registered by hand: a second ticket, voided as a duplicate
                twin = self.register(pipeline="car-purchase", channel="web_form",
                                     subject=f"Заявка с сайта: {model}",
                                     client=Ticket.objects.get(pk=ticket.pk).client)
                yield self.later(minutes=rng.randint(20, 120))
                ticket_void(actor=self.executor(twin), ticket=twin,
                            reason="Дубль: клиент позвонил и оставил заявку на сайте",
                            duplicate_of=ticket.number)

        p_loss = {"new": 0.13, "qualification": 0.14, "presentation": 0.17, "quote": 0.2,
                  "credit": 0.25, "contract": 0.06} if s.calm else {}
        credit = s.hold_at == "credit" or rng.random() < 0.45
        reopen = s.calm and rng.random() < 0.08  # lost for a while, then the client is back
        returned = s.calm and rng.random() < 0.03

        # New request: reach the client.
        silent = rng.random() < p_loss.get("new", 0)
        for attempt in range(3 if silent else int(rng.random() < 0.3)):
            yield self.later(minutes=rng.randint(10, 90) if attempt == 0 else 0,
                             hours=0 if attempt == 0 else rng.randint(3, 26))
            self.call_back(ticket, result="Не берёт трубку")
        if silent:
            yield self.later(hours=rng.randint(20, 30))
            self.lose(ticket, "no_contact", "Три попытки дозвона, SMS и письмо без ответа")
            return
        if arrived is not None:  # an email answered and answered back, a second message
            yield from self.channels.conversation(arrived)
        yield self.later(minutes=rng.randint(5, 90))
        budget = round(price * rng.uniform(1.0, 1.15) / 50_000) * 50_000
        self.advance(ticket, "new", {
            "contacted": None,
            "need": rng.choice((f"{model}, бюджет до {rub(budget)} ₽, покупка в течение месяца",
                                f"{model} в топовой комплектации, покупка до конца квартала",
                                f"{model}, нужен автомобиль в наличии, цвет любой")),
        }, contact="connected")
        self.maybe_reassign(ticket, RETAIL)
        if s.hold_at == "qualification":
            yield self.after_end

        # Qualification: budget and payment.
        if rng.random() < 0.12:
            yield self.later(hours=rng.randint(2, 6))
            task = self.open_tasks(ticket)[-1]
            task_reschedule(actor=self.user(task.assignee_id), task=task,
                            due_at=self.later(days=2),
                            reason="Клиент в командировке, просил перезвонить через два дня")
            yield self.later(days=2)
        else:
            yield self.later(hours=rng.randint(3, 30))
        if rng.random() < p_loss.get("qualification", 0):
            self.contact(ticket, "call", "out", "connected")
            reason = rng.choice(("postponed", "price"))
            if not (yield from self.lost_for_now(
                    ticket, reason, "Клиент решил отложить покупку до весны"
                    if reason == "postponed" else "Бюджет клиента ниже цены автомобиля",
                    reopen)):
                return
            reopen = False
        payment = "Кредит" if credit else rng.choice(("Наличные", "Трейд-ин и доплата",
                                                      "Наличные, частично трейд-ин"))
        checklist: dict[str, str | None] = {"budget": rub(budget), "payment": payment + (
            f", первоначальный взнос {rng.choice((20, 30, 40, 50))}%" if credit else "")}
        if rng.random() < 0.3:
            checklist["trade_in"] = None
        self.advance(ticket, "qualification", checklist, amount=price, contact="connected")
        if s.hold_at == "presentation":
            yield self.after_end

        # Presentation and test drive.
        if rng.random() < 0.25:
            yield self.later(minutes=rng.randint(10, 60))
            task_plan(actor=self.executor(ticket), ticket=ticket, draft=TaskDraft(
                kind="video", title="Видеопрезентация автомобиля по видеосвязи",
                due_at=self.later(days=1)))
            yield self.later(days=1)
            self.complete(self.open_tasks(ticket)[-1])
        yield self.later(days=rng.randint(1, 3), hours=rng.randint(0, 4))
        if rng.random() < 0.1:
            meeting = next(t for t in self.open_tasks(ticket) if t.kind == "meeting")
            self.complete(meeting, outcome="missed", result="Клиент не приехал на тест-драйв",
                          successor=TaskDraft(kind="meeting", title="Повторно пригласить на "
                                              "тест-драйв", due_at=self.later(days=2)))
            yield self.later(days=2)
        if rng.random() < p_loss.get("presentation", 0):
            reason = rng.choice(("competitor", "price", "no_stock"))
            self.contact(ticket, "call", "in", "connected")
            if not (yield from self.lost_for_now(
                    ticket, reason, {"competitor": "Купил в другом салоне со скидкой",
                                     "price": "Не устроила цена после тест-драйва",
                                     "no_stock": "Нужного цвета нет, ждать 3 месяца не готов",
                                     }[reason], reopen and reason != "no_stock")):
                return
            reopen = False
        checklist = {"presented": ddmmyyyy(clock.now())}
        if rng.random() < 0.6:
            checklist["test_drive"] = ddmmyyyy(clock.now())
        self.advance(ticket, "presentation", checklist)
        if s.hold_at == "quote":
            yield self.after_end

        # Quote (again after a reopen, or when a head sends the contract back for a new one).
        quote = price
        while True:
            yield self.later(hours=rng.uniform(1, 6))
            quote = round(price * rng.uniform(0.93, 1.0) / 5_000) * 5_000
            number = self.serial("КП")
            document_issue(actor=self.executor(ticket), ticket=ticket, kind="quote",
                           number=number, amount=quote)
            self.contact(ticket, "email", "out", "sent", note=f"{number} отправлено клиенту")
            if s.calm and rng.random() < 0.35:  # the client takes time to think it over
                yield from self.pause(ticket, rng.randint(5, 20), title="Узнать решение по КП",
                                      result="Клиент думает, сравнивает предложения")
            else:
                yield self.later(days=rng.randint(1, 4))
            if rng.random() < p_loss.get("quote", 0):
                self.contact(ticket, "call", "out", "connected")
                reason = rng.choice(("price", "competitor"))
                if not (yield from self.lost_for_now(
                        ticket, reason, "Конкурент предложил скидку больше"
                        if reason == "competitor" else "Не готов платить больше бюджета",
                        reopen)):
                    return
                reopen = False
                continue
            self.advance(ticket, "quote", {"quote_number": number, "quote_amount": rub(quote)},
                         to=None if credit else "contract", amount=quote, contact="connected")

            if credit:
                credit = False  # one application is enough, even after a new quote
                if s.hold_at == "credit":
                    yield self.after_end
                yield self.later(hours=rng.uniform(1, 6))
                bank = rng.choice(BANKS)
                self.items(ticket, "credit", {"bank_application": f"{bank} № "
                                                                  f"{rng.randint(10**6, 10**7)}"})
                if s.calm and rng.random() < 0.3:  # the bank asks for more documents
                    yield from self.pause(ticket, rng.randint(3, 8),
                                          title="Запросить у клиента документы для банка",
                                          result="Клиент собирает справки для банка")
                else:
                    yield self.later(days=rng.randint(1, 3))
                if rng.random() < p_loss.get("credit", 0):
                    self.lose(ticket, "credit_denied", f"{bank}: отказ в кредите")
                    return
                approved = round(quote * rng.uniform(0.5, 0.8) / 10_000) * 10_000
                self.advance(ticket, "credit", {"approved_amount": rub(approved)})

            # Contract.
            if s.hold_at == "contract":
                yield self.after_end
            yield self.later(days=rng.randint(0, 2), hours=rng.randint(1, 4))
            if rng.random() < p_loss.get("contract", 0):
                reason = rng.choice(("competitor", "postponed"))
                self.contact(ticket, "call", "in", "connected")
                self.lose(ticket, reason, "Передумал перед подписанием договора")
                return
            if returned:
                returned = False
                stage_return(actor=self.head(ticket), ticket=ticket, stage="contract",
                             to="quote", reason="Клиент выбрал другую комплектацию: нужно "
                                                "новое КП")
                continue
            break
        contract = self.serial("ДКП")
        document_issue(actor=self.executor(ticket), ticket=ticket, kind="contract",
                       number=contract, amount=quote)
        self.advance(ticket, "contract", {"contract_number": contract,
                                          "signed_on": ddmmyyyy(clock.now())})
        if s.hold_at == "delivery":
            yield self.after_end

        # Payment and delivery.
        yield self.later(hours=rng.randint(2, 24))
        invoice = self.serial("СЧ")
        document_issue(actor=self.executor(ticket), ticket=ticket, kind="invoice",
                       number=invoice, amount=quote)
        yield self.later(days=rng.randint(1, 5))
        self.contact(ticket, "call", "out", "connected", note="Согласовали дату выдачи")
        yield self.later(days=rng.randint(1, 3))
        self.contact(ticket, "meeting", "out", "held", note="Выдача автомобиля")
        self.items(ticket, "delivery", {"invoice_number": invoice, "paid": rub(quote),
                                        "delivered_on": ddmmyyyy(clock.now())})
        ticket_close_won(actor=self.executor(ticket), ticket=ticket, stage="delivery",
                         amount=quote)

    def _service(self, s: Story) -> Generator[datetime, None, None]:
        rng = self.rng
        yield s.start
        work, low, high = rng.choice(SERVICES)
        model = rng.choice(CARS)[0]
        amount = round(rng.uniform(low, high) / 100) * 100
        channel = rng.choices(("phone", "web_form", "messenger"), (60, 30, 10))[0]
        client = self.known_person() if rng.random() < 0.6 else None
        ticket = self.register(pipeline="service-booking", channel=channel,
                               subject=f"{work}: {model}", client=client, amount=amount)
        s.ticket = ticket
        if s.hold_at == "request":
            yield self.after_end
        yield self.later(minutes=rng.randint(10, 60))
        if s.calm and rng.random() < 0.08:
            self.contact(ticket, "call", "out", "connected")
            self.lose(ticket, "other_service", "Записался в сервис ближе к дому")
            return
        slot = next_working(_at(add_working_days(clock.now(), rng.randint(2, 6)).astimezone(
            company_tz()).date(), rng.randint(9, 16)), rng)
        self.advance(ticket, "request", {
            "car": f"{model}, {rng.randint(2019, 2025)} г., пробег "
                   f"{rub(rng.randint(5, 140) * 1000)} км",
            "slot": ddmmyyyy(slot),
        }, next_task=TaskDraft(kind="call", title="Напомнить о визите за день",
                               due_at=_at(_previous_working_day(slot), 11)),
            contact="connected")
        if s.hold_at == "confirmed":
            yield self.after_end
        yield _at(_previous_working_day(slot), 11) + timedelta(minutes=rng.randint(0, 120))
        no_show = s.calm and rng.random() < 0.1
        self.advance(ticket, "confirmed", {"reminded": None}, contact="connected")
        if s.hold_at == "visit":
            yield self.after_end
        yield slot
        if no_show:
            yield self.later(hours=4)
            self.lose(ticket, "no_show", "Клиент не приехал и не отвечает на звонки")
            return
        self.items(ticket, "visit", {"work_order": self.serial("ЗН")})
        yield self.later(hours=rng.randint(2, 6))
        ticket_close_won(actor=self.executor(ticket), ticket=ticket, stage="visit",
                         amount=amount)

    def _fleet(self, s: Story) -> Generator[datetime, None, None]:
        rng = self.rng
        yield s.start
        keys = [c for c in self.companies if c.key_account]
        client = rng.choice(keys) if rng.random() < 0.5 else rng.choice(self.companies)
        model, low, high = rng.choice(FLEET_CARS)
        qty = rng.choice((3, 5, 5, 8, 10, 12, 15, 20, 25, 30, 40))
        unit = round(rng.uniform(low, high) / 10_000) * 10_000
        channel = rng.choices(("email", "phone", "web_form"), (50, 40, 10))[0]
        taxi = client.segment_id == self.segments["taxi"].pk
        subject = (f"Обновление таксопарка: {qty} × {model}" if taxi
                   else f"Поставка {qty} × {model} для автопарка")
        ticket = self.register(pipeline="fleet", channel=channel, subject=subject,
                               client=client, amount=qty * unit)
        s.ticket = ticket
        if s.hold_at == "request":
            yield self.after_end

        yield self.later(minutes=rng.randint(20, 180))
        name = person_name(rng)
        self.advance(ticket, "request", {
            "contact_person": f"{name.first} {name.last}, {rng.choice(BUYER_POSITIONS)}",
            "fleet_size": str(qty),
        }, contact="connected")
        if s.hold_at == "proposal":
            yield self.after_end

        yield self.later(hours=rng.randint(3, 24))
        total = round(qty * unit * rng.uniform(0.9, 0.97) / 10_000) * 10_000
        number = self.serial("КП")
        document_issue(actor=self.executor(ticket), ticket=ticket, kind="quote", number=number,
                       amount=total)
        self.contact(ticket, "email", "out", "sent", note=f"{number} отправлено закупщику")
        yield self.later(days=rng.randint(1, 3))
        if s.calm and rng.random() < 0.2:
            self.complete(self.open_tasks(ticket)[-1], successor=TaskDraft(
                kind="call", title="Узнать решение по КП", due_at=self.later(days=3)))
            yield self.later(days=3)
            self.contact(ticket, "call", "out", "connected")
            reason = rng.choice(("tender_lost", "budget_cut"))
            self.lose(ticket, reason, "Тендер выиграл другой дилер" if reason == "tender_lost"
                      else "Закупку перенесли на следующий год")
            return
        self.advance(ticket, "proposal", {"quote_number": number, "quote_amount": rub(total)},
                     to="contract" if s.calm and rng.random() < 0.5 else None, amount=total)

        if self.fresh(ticket).stage.code == "approval":
            if s.hold_at == "approval":
                yield self.after_end
            yield self.later(days=rng.randint(1, 3))
            if s.calm:
                yield from self.pause(ticket, rng.randint(5, 25),
                                      title="Узнать решение по тендеру",
                                      result="Решение ещё не принято, ждём итогов согласования")
            if s.calm and rng.random() < 0.2:
                self.complete(self.open_tasks(ticket)[-1], successor=TaskDraft(
                    kind="call", title="Узнать итоги тендера", due_at=self.later(days=5)))
                yield self.later(days=5)
                self.lose(ticket, "tender_lost", "Проиграли тендер по цене")
                return
            self.advance(ticket, "approval", {
                "decision_date": ddmmyyyy(add_working_days(clock.now(), rng.randint(2, 10)))})

        if s.hold_at == "contract":
            yield self.after_end
        yield self.later(days=rng.randint(2, 7))
        contract = self.serial("ДП")
        document_issue(actor=self.executor(ticket), ticket=ticket, kind="contract",
                       number=contract, amount=total)
        self.advance(ticket, "contract", {"contract_number": contract,
                                          "contract_amount": rub(total)})
        if s.hold_at == "delivery":
            yield self.after_end

        yield self.later(days=rng.randint(1, 4))
        invoice = self.serial("СЧ")
        document_issue(actor=self.executor(ticket), ticket=ticket, kind="invoice",
                       number=invoice, amount=total)
        yield self.later(days=rng.randint(7, 20))
        self.items(ticket, "delivery", {"invoice_number": invoice, "paid": rub(total)})
        ticket_close_won(actor=self.executor(ticket), ticket=ticket, stage="delivery",
                         amount=total)

    def _complaint(self, s: Story) -> Generator[datetime, None, None]:
        rng = self.rng
        yield s.start
        subject, essence, cause, decision = rng.choice(COMPLAINTS)
        ticket = self.register(pipeline="complaint", channel=rng.choice(("phone", "email")),
                               subject=subject, client=self.known_person())
        s.ticket = ticket
        if s.hold_at == "received":
            yield self.after_end
        yield self.later(minutes=rng.randint(20, 110))
        self.advance(ticket, "received", {"essence": essence}, contact="connected")
        if s.hold_at == "investigation":
            yield self.after_end
        yield self.later(days=rng.randint(1, 2))
        self.advance(ticket, "investigation", {"cause": cause})
        if s.hold_at == "resolution":
            yield self.after_end
        yield self.later(days=rng.randint(1, 3))
        if s.calm and rng.random() < 0.1:
            self.lose(ticket, "unresolved", "Клиент не согласился с решением и ушёл в другой "
                                            "сервис")
            return
        self.items(ticket, "resolution", {"decision": decision, "client_agreed": None})
        self.contact(ticket, "call", "out", "connected", note="Клиент согласен с решением")
        ticket_close_won(actor=self.executor(ticket), ticket=ticket, stage="resolution")

    def _spam(self, s: Story) -> Generator[datetime, None, None]:
        yield s.start
        client = client_create(actor=None, name="Продвижение сайтов",
                               emails=[f"seo{self.rng.randint(1, 999)}@promo.example"])
        ticket = self.register(pipeline="car-purchase", channel="web_form", client=client,
                               subject="Выведем ваш автосалон в ТОП-10 поисковиков")
        yield self.later(minutes=self.rng.randint(10, 120))
        ticket_void(actor=self.executor(ticket), ticket=ticket,
                    reason="Спам: реклама через форму на сайте")

    def _staff(self, s: Story) -> Generator[datetime, None, None]:
        """A seller's holiday (their open tickets handed over first) and a seller who leaves."""
        rng = self.rng
        span = self.end - self.start
        sokolova = self.users["sokolova"]
        holiday = next_working(self.start + span * 0.4, rng)
        begins = _at(holiday.astimezone(company_tz()).date(), 0)
        yield next_working(holiday - timedelta(days=7), rng)
        vacationer = self.users[VACATIONER]
        absence_add(actor=sokolova, user=vacationer, starts_at=begins,
                    ends_at=begins + timedelta(days=14), reason="Ежегодный отпуск")
        yield last_working(begins, rng)
        self._hand_over(vacationer, sokolova, "Отпуск менеджера: заявка передана коллеге")

        yield next_working(self.start + span * 0.62, rng)
        leaver = self.users[LEAVER]
        user_deactivate(actor=self.users["admin"], user=leaver, successor=sokolova,
                        reason="Увольнение по собственному желанию")
        yield self.later(hours=1)
        self._hand_over(sokolova, sokolova, "Заявки уволившегося менеджера распределены по "
                                            "отделу", pipelines=("car-purchase",
                                                                 "service-booking"))

    def _hand_over(self, owner: User, head: User, reason: str,
                   pipelines: tuple[str, ...] = ()) -> None:
        tickets = Ticket.objects.filter(owner=owner, status=TicketStatus.OPEN).order_by("pk")
        if pipelines:
            tickets = tickets.filter(pipeline__code__in=pipelines)
        colleagues = [u for u in self.sellers(RETAIL) if u.pk != owner.pk]
        for ticket, colleague in zip(tickets, itertools.cycle(colleagues), strict=False):
            ticket_reassign(actor=head, ticket=ticket, owner=colleague, reason=reason)

    def _checkpoints(self, s: Story) -> Generator[datetime, None, None]:
        """The nightly sealing job, shown once a month."""
        local = self.start.astimezone(company_tz())
        year, month = local.year, local.month
        while True:
            month += 1
            if month == 13:
                year, month = year + 1, 1
            moment = datetime(year, month, 1, 3, 0, tzinfo=company_tz()).astimezone(UTC)
            yield moment
            checkpoint_create()


def _previous_working_day(moment: datetime) -> date:
    day = moment.astimezone(company_tz()).date() - timedelta(days=1)
    while not is_working_day(day):
        day -= timedelta(days=1)
    return day


def _poisson(rng: random.Random, rate: float) -> int:
    """Knuth's method: fine for the small daily rates used here."""
    if rate <= 0:
        return 0
    limit, k, p = pow(2.718281828459045, -rate), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
