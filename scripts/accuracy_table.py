#!/usr/bin/env python3
"""The README's accuracy table: WER, CPU per audio second and peak memory per model file,
all measured the same way, with `earshot transcribe` (the upload path, 1 thread per decode
as `earshot serve` runs it) on ../shared/audio.

    cargo build --release -p earshot
    python3 scripts/accuracy_table.py target/release/earshot MODEL.bin [MODEL.bin ...]

Per model (one process per run, so peak RSS is that model's):
  * WER clips: the 8 clips of shared/audio, each transcribed alone (36 reference words);
    numbers.wav compared by its digits, as its README asks;
  * WER long: the clips joined with 1.5 s of silence in 4 rotations (4 × 36 words, 33 s
    each: two 30 s windows, so context and window boundaries count);
  * CPU-s per audio-s: user + system CPU of the whole process (model load included,
    about 0.1 s) per second of audio, median of REPEAT runs (default 3) over the 8 clips,
    and once over the 4 long files; CPU time barely depends on the neighbours of a shared
    machine, wall time does;
  * peak RSS: the largest `maximum resident set size` of those runs (GNU time).

The normalisation mirrors crates/earshot-testsupport/src/speech.rs (lower case, no
punctuation, numbers spelled out); the long form uses the plain normalisation, so
numbers.wav's "692" costs every model one word ("six hundred ninety two").
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
AUDIO = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "audio"))
ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
DIGIT = {"zero": "0", "oh": "0", "one": "1", "two": "2", "to": "2", "too": "2",
         "three": "3", "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7",
         "eight": "8", "nine": "9"}


def number_words(n):
    out = []
    for size, word in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            out += number_words(n // size) + [word]
            n %= size
            if n == 0:
                return out
    if n < 20:
        return out + [ONES[n]]
    return out + [TENS[n // 10]] + ([ONES[n % 10]] if n % 10 else [])


def normalize(text):
    words = []
    for w in re.sub(r"[^\w']", " ", text.lower()).split():
        w = w.strip("'")
        if not w:
            continue
        words += number_words(int(w)) if w.isdigit() else [w]
    return words


def digits_of(text):
    words = re.sub(r"[^\w]", " ", text.lower()).split()
    out, i = "", 0
    while i < len(words):
        w = words[i]
        if w.isdigit():
            out += w
        elif w in TENS[2:]:
            unit = DIGIT.get(words[i + 1]) if i + 1 < len(words) else None
            if unit and unit != "0":
                out += "%d%s" % (TENS.index(w), unit)
                i += 1
            else:
                out += "%d0" % TENS.index(w)
        elif w in DIGIT:
            out += DIGIT[w]
        elif w in ONES:
            out += str(ONES.index(w))
        i += 1
    return out


def distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a):
        cur = [i + 1] * (len(b) + 1)
        for j, y in enumerate(b):
            cur[j + 1] = min(prev[j] + (x != y), prev[j + 1] + 1, cur[j] + 1)
        prev = cur
    return prev[len(b)]


def clip_errors(name, reference, hypothesis):
    r = normalize(reference)
    if name.startswith("numbers"):
        return min(distance(digits_of(reference), digits_of(hypothesis)), len(r)), len(r)
    return distance(r, normalize(hypothesis)), len(r)


def timed(cmd):
    """Runs cmd under GNU time: (cpu seconds, peak RSS MB)."""
    with tempfile.NamedTemporaryFile("r") as t:
        subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", t.name] + cmd,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        user, system, kb = t.read().split()[-3:]
    return float(user) + float(system), int(kb) / 1024


def seconds(wav):
    return float(subprocess.check_output(["soxi", "-D", wav]).decode())


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    earshot, models = sys.argv[1], sys.argv[2:]
    repeat = int(os.environ.get("REPEAT", "3"))
    refs = [l.split("\t") for l in open(os.path.join(AUDIO, "references.tsv")).read().splitlines()]
    clips = [os.path.join(AUDIO, f) for f, _ in refs]
    work = tempfile.mkdtemp(prefix="accuracy-")
    gap = os.path.join(work, "gap.wav")
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", gap, "trim", "0", "1.5"], check=True)
    longs = []
    for rot in range(4):
        order = refs[rot:] + refs[:rot]
        path = os.path.join(work, "long%d.wav" % rot)
        parts = [gap]
        for f, _ in order:
            parts += [os.path.join(AUDIO, f), gap]
        subprocess.run(["sox"] + parts + [path], check=True)
        longs.append((path, " ".join(r for _, r in order)))
    clip_s = sum(seconds(c) for c in clips)
    long_s = sum(seconds(p) for p, _ in longs)
    load = open("/proc/loadavg").read().split()[:3]
    print("load average at start: %s; clips %.1f s, long-form %.1f s" % (" ".join(load), clip_s, long_s))
    print("| model file | MB | WER clips | WER long | CPU-s/audio-s clips | CPU-s/audio-s long | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for model in models:
        out = os.path.join(work, os.path.basename(model))
        base = [earshot, "transcribe", "--quiet", "--threads", "1", "--model", model, "-o", out]
        cpus, peak = [], 0.0
        for _ in range(repeat):
            cpu, rss = timed(base + clips)
            cpus.append(cpu)
            peak = max(peak, rss)
        errs = words = 0
        for f, r in refs:
            text = open(os.path.join(out, f[:-4] + ".txt")).read()
            e, n = clip_errors(f, r, text)
            errs, words = errs + e, words + n
            print("  %s %s: %s" % (os.path.basename(model), f, text.strip()), file=sys.stderr)
        cpu_long, rss = timed(base + [p for p, _ in longs])
        peak = max(peak, rss)
        lerrs = lwords = 0
        for p, r in longs:
            text = open(os.path.join(out, os.path.basename(p)[:-4] + ".txt")).read()
            lerrs += distance(normalize(r), normalize(text))
            lwords += len(normalize(r))
            print("  %s %s: %s" % (os.path.basename(model), os.path.basename(p), text.strip()), file=sys.stderr)
        print("| %s | %.0f | %.1f%% (%d/%d) | %.1f%% (%d/%d) | %.3f | %.3f | %.0f MB |" % (
            os.path.basename(model), os.path.getsize(model) / 1e6,
            100 * errs / words, errs, words, 100 * lerrs / lwords, lerrs, lwords,
            statistics.median(cpus) / clip_s, cpu_long / long_s, peak), flush=True)
    print("load average at end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
