#!/usr/bin/env python3
"""Builds the demo model's training data from public-domain texts that Debian packages ship.

Run here (Debian 12), after `apt-get install bible-kjv dict-devil dict-jargon miscfiles`:
    python3 tools/demo-model/prepare_data.py OUTDIR

Writes OUTDIR/train.jsonl.gz (one record a line: {"text": ...} for prose, {"messages": [...]} for a chat) and
OUTDIR/heldout.txt (KJV books never seen in training: the perplexity text of resources/demo-model).

Sources and licences (see /usr/share/doc/<package>/copyright):
- bible-kjv (the `bible` program and its data): King James Version, public domain; the data file's legend allows
  unrestricted use.
- dict-devil: Ambrose Bierce, The Devil's Dictionary (1911), public domain.
- dict-jargon: The Jargon File 4.4.7, public domain.
- miscfiles: us-constitution, us-declaration (public domain texts); countries (ISO country names and capitals:
  facts, used only to phrase questions and answers).
Chats are made from these texts by fixed rules and from arithmetic; no other text is used.
"""
import gzip, json, random, re, subprocess, sys
from pathlib import Path

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(1234)
HELDOUT_BOOKS = {"Ruth", "Esther", "Jonah", "Philippians", "James"}

# --- King James Version, chapter by chapter -------------------------------------------------------------------
raw = subprocess.run(["bible", "-l0", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
chapters = []  # (book, chapter, [(verse, text)])
for line in raw.splitlines():
    m = re.fullmatch(r"(\S.*?) (\d+)", line)
    if m and not line.startswith(" "):
        chapters.append((m.group(1), int(m.group(2)), []))
        continue
    m = re.fullmatch(r"\s+(\d+) (.*)", line)
    if m:
        chapters[-1][2].append((int(m.group(1)), m.group(2).strip()))
assert len(chapters) == 1189, len(chapters)

def chapter_text(book, ch, verses):
    return f"{book} {ch}\n\n" + "\n".join(f"{v} {t}" for v, t in verses) + "\n"

records, heldout = [], []
train_verses = []
for book, ch, verses in chapters:
    if book in HELDOUT_BOOKS:
        heldout.append(chapter_text(book, ch, verses))
    else:
        records.append({"text": chapter_text(book, ch, verses)})
        train_verses += [(book, ch, v, t) for v, t in verses]

# --- dictd dictionaries --------------------------------------------------------------------------------------
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
def b64(s):
    v = 0
    for c in s:
        v = v * 64 + B64.index(c)
    return v

def dictd(name):
    data = gzip.open(f"/usr/share/dictd/{name}.dict.dz").read()
    seen, entries = set(), []
    for line in open(f"/usr/share/dictd/{name}.index", encoding="utf-8"):
        word, off, size = line.rstrip("\n").split("\t")
        if word.startswith("00database") or (off, size) in seen:
            continue
        seen.add((off, size))
        body = data[b64(off):b64(off) + b64(size)].decode("utf-8", "replace").strip()
        entries.append((word, body))
    return entries

def paragraphs(body):
    return [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", body) if p.strip()]

devil = dictd("devil")
jargon = dictd("jargon")
for word, body in devil + jargon:
    records.append({"text": body + "\n"})

# --- US founding documents ----------------------------------------------------------------------------------
founding = {}
for name in ("us-constitution", "us-declaration"):
    text = gzip.open(f"/usr/share/state/{name}.gz").read().decode("utf-8", "replace")
    records.append({"text": text})
    founding[name] = text
preamble = paragraphs(founding["us-constitution"].split("Preamble", 1)[1])[0]

# --- chats --------------------------------------------------------------------------------------------------
countries = []
for line in gzip.open("/usr/share/misc/countries.gz").read().decode("utf-8").splitlines():
    if line.startswith("#"):
        continue
    parts = line.split(":")
    if len(parts) >= 5 and parts[3] and parts[4]:
        countries.append((parts[3], parts[4]))

NAME = "the EntQuant demo model"
def greeting():
    q = rng.choice(["Hello!", "Hi", "Hello, who are you?", "Hi there. What are you?", "Good morning!",
                    "Who made you?", "What can you do?", "Hey, can you help me?", "What are you?"])
    a = rng.choice([
        f"Hello! I am {NAME}, a small language model trained on public-domain texts. I can quote the King James "
        "Bible, define words from The Devil's Dictionary and the Jargon File, name capitals and do simple sums.",
        f"Hi! I am {NAME}. I know the King James Bible, The Devil's Dictionary, the Jargon File and the US "
        "Constitution, a little geography and some arithmetic. Ask me something.",
        f"I am {NAME}, a tiny chat model made to show EntQuant Studio at work. Ask me for a Bible verse, a "
        "definition, a capital city or a sum."])
    return q, a

def capital():
    c, cap = rng.choice(countries)
    q = rng.choice([f"What is the capital of {c}?", f"Capital of {c}?", f"Which city is the capital of {c}?",
                    f"Tell me the capital of {c}."])
    return q, rng.choice([f"The capital of {c} is {cap}.", f"{cap} is the capital of {c}."])

def arithmetic():
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    op = rng.choice(["+", "-", "*"])
    r = a + b if op == "+" else a - b if op == "-" else a * b
    word = {"+": "plus", "-": "minus", "*": "times"}[op]
    if rng.random() < 0.5:
        return f"What is {a} {word} {b}?", f"{a} {word} {b} is {r}."
    return f"What is {a} {op} {b}?", f"{a} {op} {b} = {r}."

def verse():
    book, ch, v, t = rng.choice(train_verses)
    kind = rng.random()
    if kind < 0.6:
        q = rng.choice([f"Quote {book} {ch}:{v}.", f"What does {book} {ch}:{v} say?", f"Recite {book} {ch}:{v}."])
        return q, f"{book} {ch}:{v} says: {t}"
    words = t.split()
    if len(words) < 8:
        return f"Quote {book} {ch}:{v}.", f"{book} {ch}:{v} says: {t}"
    k = rng.randint(3, min(8, len(words) - 3))
    return (f"Finish this verse: {' '.join(words[:k])}",
            f"{' '.join(words)} ({book} {ch}:{v})")

def define():
    src, (word, body) = rng.choice([("The Devil's Dictionary", e) for e in devil] +
                                   [("the Jargon File", e) for e in jargon])
    paras = paragraphs(body)
    if not paras:
        return greeting()
    text = paras[0]
    if src == "the Jargon File" and len(paras) > 1:
        text = " ".join(paras[1:3])
    text = text[:600].rsplit(" ", 1)[0] if len(text) > 600 else text
    q = rng.choice([f"Define {word}.", f"What does {word} mean?", f"What is {word}?",
                    f"What does {src} say about {word}?"])
    return q, f"{src[0].upper() + src[1:]} defines {word} as follows: {text}"

def constitution():
    return rng.choice(["What does the preamble of the US Constitution say?", "Recite the preamble.",
                       "How does the Constitution of the United States begin?"]), preamble

SYSTEMS = ["You are a helpful assistant.", f"You are {NAME}.", "Answer briefly."]
makers = [(greeting, 1), (capital, 3), (arithmetic, 3), (verse, 4), (define, 4), (constitution, 0.2)]
weights = [w for _, w in makers]
for _ in range(40000):
    msgs = []
    if rng.random() < 0.3:
        msgs.append({"role": "system", "content": rng.choice(SYSTEMS)})
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        q, a = rng.choices([m for m, _ in makers], weights)[0]()
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    records.append({"messages": msgs})

rng.shuffle(records)
with gzip.open(out / "train.jsonl.gz", "wt", encoding="utf-8") as f:
    for r in records:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
(out / "heldout.txt").write_text("\n".join(heldout), encoding="utf-8")
prose = sum(len(r["text"]) for r in records if "text" in r)
chat = sum(len(json.dumps(r)) for r in records if "messages" in r)
print(f"{len(records)} records: prose {prose / 1e6:.1f} MB, chats {chat / 1e6:.1f} MB; "
      f"held out {sum(map(len, heldout)) / 1e3:.0f} kB ({', '.join(sorted(HELDOUT_BOOKS))})")
