"""Whether the AVX-512 (*_v4) and baseline (*_any) functions of two builds' phases.so have the same machine code,
addresses and symbol offsets aside (session 38: the AVX2 changes must leave them alone).

    python scripts/gate_v4_same.py OLD.dis NEW.dis   (each from: objdump -d --no-show-raw-insn phases.*.so)
"""
import re
import sys


def functions(path):
    out, name = {}, None
    for line in open(path):
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name and line.strip():
            ins = line.split("\t", 1)[-1].strip()
            ins = re.sub(r"\b[0-9a-f]{4,}\b <[^>]*>", "ADDR", ins)
            ins = re.sub(r"#.*", "", ins)
            ins = re.sub(r"0x[0-9a-f]+\(%rip\)", "RIP", ins)
            out[name].append(ins)
    return out


old, new = functions(sys.argv[1]), functions(sys.argv[2])
for pat in ("_v4", "_any"):
    names = sorted(n for n in old if pat in n)
    diff = [n for n in names if old[n] != new.get(n)]
    print(f"{pat}: {len(names)} functions, {len(diff)} differ: {diff[:20]}")
