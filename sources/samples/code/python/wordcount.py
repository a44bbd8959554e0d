"""Count word frequencies in text files and print the most common ones."""

import argparse
import re
from collections import Counter
from pathlib import Path

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def count_words(paths: list[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        counts.update(word.lower() for word in WORD.findall(text))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("-n", "--top", type=int, default=10, help="how many words to print")
    args = parser.parse_args()
    for word, n in count_words(args.files).most_common(args.top):
        print(f"{n:>8}  {word}")


if __name__ == "__main__":
    main()
