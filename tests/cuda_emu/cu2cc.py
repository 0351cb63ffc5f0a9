#!/usr/bin/env python3
"""Rewrites a .cu file for the CUDA emulator: each launch `kernel<targs><<<cfg>>>(args)` becomes
`evo_emu::kernel(evo_emu::make_cfg(cfg), [=](auto... a_) { kernel<targs>(a_...); })(args)`
(a generic lambda, so template arguments are deduced from the call as in a real launch), each __shared__ declaration is followed (on its line) by a call that poisons the variable per block,
everything else is kept line for line (a #line
directive points diagnostics and sanitizer reports at the original file).
Usage: cu2cc.py IN.cu OUT.cc"""
import os
import re
import sys


def kernel_start(s, end):
    """Index where the kernel expression ending at s[end] (exclusive) begins: an identifier (with ::) optionally
    followed by a balanced template argument list."""
    i = end
    while i > 0 and s[i - 1].isspace():
        i -= 1
    if i > 0 and s[i - 1] == '>':
        depth = 0
        while i > 0:
            i -= 1
            if s[i] == '>':
                depth += 1
            elif s[i] == '<':
                depth -= 1
                if depth == 0:
                    break
    while i > 0 and (s[i - 1].isalnum() or s[i - 1] in '_:'):
        i -= 1
    return i


def rewrite(src):
    out, pos = [], 0
    while True:
        a = src.find('<<<', pos)
        if a < 0:
            out.append(src[pos:])
            return ''.join(out)
        b = src.find('>>>', a)
        if b < 0:
            raise SystemExit('cu2cc: unterminated <<< launch')
        k = kernel_start(src, a)
        out.append(src[pos:k])
        out.append('evo_emu::kernel(evo_emu::make_cfg(%s), [=](auto... a_) { %s(a_...); })' % (src[a + 3:b], src[k:a].strip()))
        pos = b + 3


SHARED = re.compile(r'__shared__([^;{}]*?)\b([A-Za-z_]\w*)\s*((?:\[[^\];]*\]\s*)*);')


def poison_shared(src):
    """Appends to each `__shared__ ... name[...];` declaration a call that fills the variable with garbage at the
    start of every block, as a GPU leaves shared memory (a function-local static would keep the last block's)."""
    return SHARED.sub(lambda m: m.group(0) + ' evo_emu::poison_shared(&%s, sizeof %s);' % (m.group(2), m.group(2)),
                      src)


def main():
    src_path, out_path = sys.argv[1], sys.argv[2]
    with open(src_path) as f:
        src = f.read()
    text = '#line 1 "%s"\n' % src_path + poison_shared(rewrite(src))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, 'w') as f:
        f.write(text)


if __name__ == '__main__':
    main()
