#!/usr/bin/env python3
"""Writes a JSON document as UBJSON (the format of XGBoost's save_model("x.ubj")):
fuzzing seeds for the UBJ reader.  Usage: json2ubj.py in.json out.ubj"""
import json
import struct
import sys


def length(n):
    return b'l' + struct.pack('>i', n)


def enc(v):
    if v is None:
        return b'Z'
    if v is True:
        return b'T'
    if v is False:
        return b'F'
    if isinstance(v, int):
        return b'L' + struct.pack('>q', v)
    if isinstance(v, float):
        return b'd' + struct.pack('>f', v)
    if isinstance(v, str):
        b = v.encode()
        return b'S' + length(len(b)) + b
    if isinstance(v, list):
        if v and all(isinstance(x, float) for x in v):
            # typed, counted float32 array, as XGBoost writes split conditions
            return b'[$d#' + length(len(v)) + b''.join(struct.pack('>f', x) for x in v)
        return b'[' + b''.join(enc(x) for x in v) + b']'
    if isinstance(v, dict):
        out = b'{'
        for k, x in v.items():
            kb = k.encode()
            out += length(len(kb)) + kb + enc(x)
        return out + b'}'
    raise TypeError(type(v))


with open(sys.argv[1]) as f:
    doc = json.load(f)
with open(sys.argv[2], 'wb') as f:
    f.write(enc(doc))
