"""A WARC of every kind of record a crawl holds, written with warcio (an implementation independent of the
fastwarc reader under test), for the web reader tests, the Dask runner test and the web benchmark.

Each HTML page has the same chrome around its article: a navigation menu, a cookie banner, a sidebar of
links and a footer, so a test can check that the extracted text has the article and none of the chrome.
`EXPECTED` says what must become of each record.
"""

from __future__ import annotations

import io
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

CHROME_MENU = ["Home", "Products", "About us", "Contact", "Careers"]
CHROME_LINES = ["We use cookies to improve your experience. Accept all cookies",
                "Copyright 2024 Example Media Group. All rights reserved.",
                "Privacy policy | Terms of use | Imprint"]

# (url, lang attribute, script, title, article paragraphs)
ARTICLES = [
    ("https://news.example.org/science/rivers", "en", "Latin", "Rivers of the north",
     ["The rivers of the northern plains carry meltwater from the mountains to the sea every spring.",
      ("Scientists measured the flow at twelve stations and found that the peak now arrives three weeks "
      "earlier than it did half a century ago, which changes how farmers plan the planting season."),
      ("The team will publish the full measurements next year, together with a map of the stations and a "
      "short guide that explains to local councils how the earlier floods may affect bridges and roads.")]),
    ("https://journal.example.fr/culture/bibliotheque", "fr", "Latin", "La bibliothèque du quartier",
     ["La bibliothèque du quartier ouvre ses portes le dimanche depuis le mois dernier.",
      ("Les habitants y viennent en famille pour emprunter des livres, lire la presse et participer aux "
      "ateliers d'écriture organisés par les bénévoles de l'association."),
      ("La mairie envisage désormais d'étendre ces horaires aux soirées de la semaine, car la salle de "
      "lecture est pleine chaque dimanche et les enfants du quartier y font aussi leurs devoirs.")]),
    ("https://zeitung.example.de/stadt/fahrrad", "de", "Latin", "Neue Radwege in der Stadt",
     ["Die Stadt baut in diesem Jahr zwanzig Kilometer neue Radwege entlang der großen Straßen.",
      ("Nach Angaben der Verwaltung sollen die Arbeiten bis zum Herbst abgeschlossen sein, damit Schüler "
      "und Pendler sicherer zur Schule und zur Arbeit fahren können."),
      ("Die Anwohner haben die Pläne bei einer Versammlung im Rathaus diskutiert und sich vor allem mehr "
      "Bäume und bessere Beleuchtung an den Kreuzungen gewünscht, die nun ebenfalls geprüft werden.")]),
    ("https://gazeta.example.ru/nauka/les", "ru", "Cyrillic", "Лес после пожара",
     ["Лес на севере области медленно восстанавливается после большого пожара прошлым летом.",
      ("Учёные насчитали на каждом гектаре сотни молодых берёз и сосен, и они считают, что через двадцать "
      "лет здесь снова будет густой лес, если не случится новой засухи."),
      ("Местные жители помогают лесникам сажать деревья и следить за тем, чтобы туристы не разводили "
      "костры в сухую погоду, потому что даже маленький огонь может снова уничтожить молодой лес.")]),
    ("https://shinbun.example.jp/kagaku/umi", "ja", "Japanese", "海の温度",
     ["今年の夏、日本の近くの海の温度は過去最高を記録しました。",
      ("研究者たちは、魚の種類が北へ移動していることを確認し、漁業への影響を調べるために来年も観測を続ける"
      "予定だと話しています。"),
      ("地元の漁師は、これまで見たことのない魚が網にかかるようになったと言い、市場の値段も大きく変わって"
      "きたため、新しい料理の方法を考える店も増えています。")]),
]

LEGACY = ("https://novosti.example.bg/obshtestvo/pazar", "bg", "Cyrillic", "Пазарът в неделя",
          ["Неделният пазар в центъра на града отново е пълен с местни производители на плодове и зеленчуци.",
           ("Търговците казват, че хората предпочитат да купуват направо от фермите, защото продуктите са "
           "по-пресни и цените са по-ниски."),
           ("Общината планира да построи покрив над сергиите, за да може пазарът да работи и през зимата, "
           "когато търговците досега трябваше да се прибират рано заради студа и дъжда.")])
"""Bulgarian in windows-1251, declared only in <meta> (the HTTP header says just text/html)."""


def page_html(lang: str, title: str, paragraphs: list[str], meta_charset: str = "utf-8") -> str:
    menu = "".join(f'<li><a href="/{item.lower().replace(" ", "-")}">{item}</a></li>' for item in CHROME_MENU)
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    sidebar = "".join(f'<li><a href="/related/{i}">Related story number {i}</a></li>' for i in range(1, 6))
    return (f'<!DOCTYPE html><html lang="{lang}"><head>'
            f'<meta http-equiv="Content-Type" content="text/html; charset={meta_charset}">'
            f"<title>{title}</title><style>body {{ color: #333; }}</style>"
            f"<script>var tracking = 'do not extract me';</script></head><body>"
            f'<div id="cookie-banner" class="cookie-consent"><p>{CHROME_LINES[0]}</p>'
            f"<button>Accept</button></div>"
            f'<header><nav class="menu"><ul>{menu}</ul></nav></header>'
            f"<main><article><h1>{title}</h1>{body}</article></main>"
            f'<aside class="sidebar"><h3>Related</h3><ul>{sidebar}</ul></aside>'
            f"<footer><p>{CHROME_LINES[1]}</p><p>{CHROME_LINES[2]}</p></footer>"
            f"</body></html>")


def _response(writer: WARCWriter, url: str, status: str, headers: list[tuple[str, str]], body: bytes):
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    return writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)


def write_warc(path: Path, gzip: bool, truncate_last: bool = True, copies: int = 1) -> list[tuple[str, str]]:
    """Write the test WARC; return (url or record kind, expected outcome) per record, in file order.

    Outcomes: "kept:<lang>", "rejected:<reason>", "quarantined". `copies` > 1 repeats the pages with new
    URLs (a larger WARC of the same make-up, for the memory benchmark)."""
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gzip, warc_version="1.1" if gzip else "1.0")  # both versions get read
    expected: list[tuple[str, str]] = []
    w.write_record(w.create_warcinfo_record("test.warc", {"software": "warcio", "format": "WARC/1.1"}))
    expected.append(("warcinfo", "rejected:not_response"))
    for copy in range(copies):
        suffix = f"?copy={copy}" if copy else ""
        for url, lang, _, title, paras in ARTICLES:
            req = w.create_warc_record(url + suffix, "request", payload=io.BytesIO(
                b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"),
                http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", "example")], is_http_request=True))
            w.write_record(req)
            expected.append((url + suffix, "rejected:not_response"))
            html = page_html(lang, title, paras).encode("utf-8")
            w.write_record(_response(w, url + suffix, "200 OK",
                                     [("Content-Type", "text/html; charset=UTF-8")], html))
            expected.append((url + suffix, f"kept:{lang}"))
        url, lang, _, title, paras = LEGACY
        legacy = page_html(lang, title, paras, meta_charset="windows-1251").encode("cp1251")
        w.write_record(_response(w, url + suffix, "200 OK", [("Content-Type", "text/html")], legacy))
        expected.append((url + suffix, f"kept:{lang}"))
        w.write_record(_response(w, f"https://news.example.org/report.pdf{suffix}", "200 OK",
                                 [("Content-Type", "application/pdf")],
                                 b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj"))
        expected.append(("pdf", "rejected:not_html"))
        w.write_record(_response(w, f"https://news.example.org/logo.png{suffix}", "200 OK",
                                 [("Content-Type", "image/png")], b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
        expected.append(("image", "rejected:not_html"))
        w.write_record(_response(w, f"http://news.example.org/old{suffix}", "301 Moved Permanently",
                                 [("Location", "https://news.example.org/science/rivers"),
                                  ("Content-Type", "text/html")], b"<html><body>Moved</body></html>"))
        expected.append(("redirect", "rejected:http_status"))
        w.write_record(_response(w, f"https://news.example.org/missing{suffix}", "404 Not Found",
                                 [("Content-Type", "text/html")], b"<html><body>Not found</body></html>"))
        expected.append(("404", "rejected:http_status"))
        garbage = b"<html><body>" + bytes(range(256)) * 4 + b"</body></html>"
        w.write_record(_response(w, f"https://news.example.org/broken{suffix}", "200 OK",
                                 [("Content-Type", "text/html; charset=utf-8")], garbage))
        expected.append(("undecodable", "quarantined"))
        meta = w.create_warc_record(f"https://news.example.org/science/rivers{suffix}", "metadata",
                                    payload=io.BytesIO(b"fetchTimeMs: 120\r\n"),
                                    warc_content_type="application/warc-fields")
        w.write_record(meta)
        expected.append(("metadata", "rejected:not_response"))
    last = page_html("en", "Last page", ["This page was cut off by an interrupted download of the file."])
    w.write_record(_response(w, "https://news.example.org/last", "200 OK",
                             [("Content-Type", "text/html; charset=utf-8")], last.encode("utf-8")))
    data = buf.getvalue()
    if truncate_last:
        data = data[:-200]
        expected.append(("truncated", "quarantined"))
    else:
        expected.append(("https://news.example.org/last", "kept:en"))
    path.write_bytes(data)
    return expected
