"""custom:* — eleven one-off tasks, each with a fixed prompt and no kwargs.

Reference crashes kept (raised as ``ReferenceCrash``, so the instruction is unscorable):
the three CSV checks raise when ``csv`` does (a field over its default 131,072-character
limit, a stray carriage return inside an unquoted field), and ``custom:csv_quotes`` raises
on an empty field, where the reference indexes an empty string.
"""

from __future__ import annotations

import csv
import io
import re
from itertools import pairwise

from ..registry import ReferenceCrash, constraint
from ..text import Text
from ._util import P, ascii_fold, crash, delete_p, sentences, split_sentences

_MULTIPLES_OF_7 = [str(n) for n in range(14, 51, 7)]


@constraint(
    "custom:multiples",
    instruction="Count from 10 to 50, writing down only the multiples of 7.",
    pseudo="assert findall(r'\\d+', replace(response, ',', ', ')) == "
    "['14', '21', '28', '35', '42', '49']",
)
def multiples(t: Text) -> bool:
    # Any other digit in the text ("Step 1") fails; words around the numbers are fine.
    return re.findall(r"\d+", t.raw.replace(",", ", ")) == _MULTIPLES_OF_7


_QUESTION_SPLIT = re.compile(r"\n*(?:Question \d+[\.|\):;]?\s*)")
_OPTION_LINE = re.compile(r"^[A-Ea-e][\.|\)]\s*\w+")


@constraint(
    "custom:mcq_count_length",
    instruction="Write 4 multiple-choice questions about 20th-century art history, with 5 "
    'options each. Start each question with the label "Question", make each question longer '
    "than the one before, and give no explanation.",
    pseudo="q = questions(response); assert starts_with('Question') and len(q) == 4 and "
    "all(options(x) == 5 for x in q) and increasing(len(text(x)) for x in q)",
)
def mcq_count_length(t: Text) -> bool:
    raw = t.raw
    if raw[raw.find("Question") :] != raw:  # anything before the first "Question" fails
        return False
    pieces = _QUESTION_SPLIT.split(raw)
    if pieces[0] == "":
        pieces = pieces[1:]
    questions = [p.strip() for p in pieces if p.strip()]
    if len(questions) != 4:
        return False
    lengths = []
    for question in questions:
        text, option_count, in_options = "", 0, False
        for line in question.split("\n"):
            if _OPTION_LINE.match(line.strip()):
                option_count += 1
                in_options = True
            elif not in_options:
                text += " " + line.strip()
        if option_count != 5:
            return False
        lengths.append(len(text.strip()))
    return all(a < b for a, b in pairwise(lengths))


@constraint(
    "custom:reverse_newline",
    instruction="List the countries of Africa in reverse alphabetical order, one per line.",
    pseudo="l = nonblank(strip_p(x) for x in lines(response)); l = l[first('Zimbabwe'):]; "
    "assert len(l) >= 52 and l == sorted(l, reverse=True)",
)
def reverse_newline(t: Text) -> bool:
    lines = [s for s in (line.strip(P + " ") for line in t.lines) if s]
    start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
    if start is None:
        return False
    listed = [ascii_fold(line) for line in lines[start:]]
    # Code-point order; numbered lines fail ("1. Zimbabwe" sorts before "2. Zambia").
    return len(listed) >= 52 and listed == sorted(listed, reverse=True)


@constraint(
    "custom:word_reverse",
    instruction="What animal is the national symbol of the US? Answer in one sentence, with the "
    "words in reverse order.",
    pseudo="r = join(reversed(split(delete_p(strip(lower(response)))))); "
    "assert 'bald eagle' in r and r in sentences(r)",
)
def word_reverse(t: Text) -> bool:
    reversed_text = " ".join(delete_p(t.lower.strip()).split()[::-1])
    if "bald eagle" not in reversed_text:
        return False
    return reversed_text in split_sentences(reversed_text, t.profile)


@constraint(
    "custom:character_reverse",
    instruction="What animal is the national symbol of the US? Answer with the letters of your "
    "sentence in reverse order.",
    pseudo="assert 'elgae dlab' in lower(response)",
)
def character_reverse(t: Text) -> bool:
    return "elgae dlab" in t.lower


@constraint(
    "custom:sentence_alphabet",
    instruction="Tell a story of 26 sentences whose first words start with A, B, C and so on "
    "through Z, in order.",
    pseudo="s = sentences(response); assert len(s) == 26 and "
    "all(lower(split(x)[0])[0] == chr(97 + i) for i, x in enumerate(s))",
)
def sentence_alphabet(t: Text) -> bool:
    sents = sentences(t)
    if len(sents) != 26:
        return False
    for i, sentence in enumerate(sents):
        words = sentence.lstrip().split()
        if not words:
            crash(t.profile, "custom:sentence_alphabet: an empty sentence")
            return False
        if words[0].lower()[0] != chr(ord("a") + i):  # a leading quote or "*" fails
            return False
    return True


_CAPITALS_NORTH_TO_SOUTH = (
    "Reykjavik",
    "Helsinki",
    "Oslo",
    "Tallinn",
    "Stockholm",
    "Riga",
    "Moscow",
    "Copenhagen",
    "Vilnius",
    "Minsk",
    "Dublin",
    "Berlin",
    "Amsterdam",
    "Warsaw",
    "London",
    "Brussels",
    "Prague",
    "Luxembourg",
    "Paris",
    "Vienna",
    "Bratislava",
    "Budapest",
    "Vaduz",
    "Chisinau",
    "Bern",
    "Ljubljana",
    "Zagreb",
)


@constraint(
    "custom:european_capitals_sort",
    instruction="Name the capitals of the European countries that lie north of 45 degrees "
    "latitude, without the country names, separated by commas and sorted from north to south.",
    pseudo="c = [strip(x) for x in split(ascii_fold(response), ',') if strip(x)]; "
    "assert c == CAPITALS_NORTH_TO_SOUTH",
)
def european_capitals_sort(t: Text) -> bool:
    items = [item for item in ascii_fold(t.raw).split(",") if item.strip()]
    return len(items) == len(_CAPITALS_NORTH_TO_SOUTH) and all(
        item.strip() == capital for item, capital in zip(items, _CAPITALS_NORTH_TO_SOUTH)
    )


_CSV_FIELD_LIMIT = 131_072  # csv's default field_size_limit, the one the reference runs with


def _csv_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    """``list(csv.reader(StringIO(text)))``, raising ``ReferenceCrash`` where csv raises.

    The field limit is checked against csv's *default*, whatever this process set, so the
    verdict does not depend on what other code did to the global ``csv.field_size_limit``.
    """
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:
        raise ReferenceCrash(
            f"csv cannot parse the answer ({e}); the reference raises here"
        ) from None
    if any(len(field) > _CSV_FIELD_LIMIT for row in rows for field in row):
        raise ReferenceCrash(
            f"a CSV field is longer than {_CSV_FIELD_LIMIT} characters; the reference raises here"
        )
    return rows


_CITY_HEADER = ["ID", "Country", "City", "Year", "Count"]


@constraint(
    "custom:csv_city",
    instruction="Write CSV data with the columns ID, Country, City, Year and Count, comma "
    "delimited, with 7 rows.",
    pseudo="r = csv_rows(response); assert len(r) == 8 and r[0] == ['ID', 'Country', 'City', "
    "'Year', 'Count'] and all(len(x) == 5 for x in r[1:])",
)
def csv_city(t: Text) -> bool:
    rows = _csv_rows(t.raw)
    return len(rows) == 8 and rows[0] == _CITY_HEADER and all(len(r) == 5 for r in rows[1:])


_PRODUCT_HEADER = re.compile(
    r'^(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),'
    r'[ \t]*(Price|"Price"),[ \t]*(Stock|"Stock")$'
)
_QUOTED_SPECIAL = re.compile(r'".*[^\d\w\s].*"')


@constraint(
    "custom:csv_special_character",
    instruction="Write CSV data with the columns ProductID, Category, Brand, Price and Stock, "
    "comma delimited, with 14 rows. One field must contain a special character and be enclosed "
    "in double quotes.",
    pseudo="assert header_ok(response) and len(rows) == 15 and "
    "first_row_with_quoted_special_field_has_5_fields(rows)",
)
def csv_special_character(t: Text) -> bool:
    if not _PRODUCT_HEADER.match(t.raw.split("\n")[0].strip()):
        return False
    rows = _csv_rows(t.raw.replace('"', '"""'))  # tripled quotes survive parsing as quotes
    if len(rows) != 15:
        return False
    for row in rows[1:]:
        if len(row) != 5:
            return False
        if any(_QUOTED_SPECIAL.match(field) for field in row):
            return True  # later rows are never looked at
    return False


_STUDENT_HEADER = re.compile(
    r'^(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")'
    r'\t *(Semester|"Semester")\t *(Score|"Score")$'
)


@constraint(
    "custom:csv_quotes",
    instruction="Write tab-delimited CSV data with the columns StudentID, Subject, Grade, "
    "Semester and Score, with 3 rows, and enclose every field in double quotes.",
    pseudo="assert header_ok(response) and len(rows) == 4 and "
    "all(len(r) == 5 and all(quoted(f) for f in r) for r in rows)",
)
def csv_quotes(t: Text) -> bool:
    if not _STUDENT_HEADER.match(t.raw.split("\n")[0].strip()):
        return False
    rows = _csv_rows(t.raw.replace('"', '"""'), delimiter="\t")
    if len(rows) != 4:
        return False
    for r, row in enumerate(rows):
        if len(row) != 5:
            return False
        for field in row:  # header included, in order, stopping at the first failure
            value = field.strip()
            if not value:
                raise ReferenceCrash(
                    f"custom:csv_quotes: row {r + 1} has an empty field; the reference raises "
                    "IndexError here"
                )
            if not (value[0] == '"' and value[-1] == '"'):
                return False
    return True


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAYS_IN_MONTH = {
    1: 31,
    3: 31,
    5: 31,
    7: 31,
    8: 31,
    10: 31,
    12: 31,
    4: 30,
    6: 30,
    9: 30,
    11: 30,
    2: 29,
}


@constraint(
    "custom:date_format_list",
    instruction="List the start dates of all the battles Napoleon fought, separated by commas, "
    "in the format YYYY-MM-DD, with no explanation.",
    pseudo="assert all(is_date_1769_1821(strip(d)) for d in split(strip(response), ','))",
)
def date_format_list(t: Text) -> bool:
    for item in t.stripped.split(","):
        item = item.strip()
        if not _DATE.match(item):
            return False
        year, month, day = (int(x) for x in item.split("-"))
        if not 1769 <= year <= 1821 or month > 12:
            return False
        # Month 00 and day 00 pass; February allows 29 in every year.
        if day > _DAYS_IN_MONTH.get(month, 99):
            return False
    return True
