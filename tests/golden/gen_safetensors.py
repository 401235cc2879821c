#!/usr/bin/python3
"""gen_safetensors.py: writes tests/golden/safetensors_fixture.safetensors with
PyTorch, through safetensors_io.save (the way a PyTorch user writes a checkpoint
lsim can read).

What it is: a small file with a few tensors of every dtype lsim reads, a
scalar, an empty tensor and metadata that needs escaping. Every value is
arange-based, so tests/test_safetensors.c states the same values again in C,
independently (keep the two in step: the formulas are repeated there).
What it is not: a model checkpoint.

The tensor order is deliberate: "u8_bytes" holds 3 bytes, so every tensor after
it starts at an offset that is not a multiple of 4 or 8 in the file: the C
reader must copy those to aligned memory.

Run with Debian's PyTorch:  /usr/bin/python3 tests/golden/gen_safetensors.py
It also reads the file back and checks it. Not with safetensors_io.load
alone: as of this writing it fails on a 0-element tensor (torch.frombuffer
refuses an empty buffer) and returns BOOL tensors as uint8; load_checked()
below works around both.

`gen_safetensors.py --check FILE` instead reads FILE (for instance one the C
writer wrote) the same way and prints its tensors and metadata.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors_fixture.safetensors")

# Metadata with characters that must be escaped in JSON, and non-ASCII text
# (json.dumps writes it as \uXXXX escapes, a surrogate pair for the emoji).
METADATA = {
    "model": "sim",
    "dim": "16",
    "escapes": "quote \" backslash \\ slash / newline \n tab \t cr \r bell \x07 del \x7f",
    "unicode": "caf\u00e9 \u4e2d\u6587 \U0001F600",
    "": "empty key",
    "empty": "",
}


def tensors():
    t = {}
    # value(i) for flat index i, stated again in test_safetensors.c
    t["f32_matrix"] = (torch.arange(12, dtype=torch.float32) * 0.5 - 2.0).reshape(3, 4)  # -2 + 0.5 i
    t["f64_vec"] = torch.arange(5, dtype=torch.float64) * 0.25 - 1.0  # -1 + 0.25 i
    t["i64_vals"] = ((torch.arange(6, dtype=torch.int64) - 3) * 1000000000000).reshape(2, 3)  # (i - 3) 1e12
    t["i32_vals"] = 5 - 7 * torch.arange(4, dtype=torch.int32)  # 5 - 7 i
    t["u8_bytes"] = (torch.arange(3, dtype=torch.int64) * 100 + 55).to(torch.uint8)  # 55 + 100 i
    t["f32_odd"] = torch.arange(2, dtype=torch.float32) + 0.25  # i + 0.25, at a misaligned offset
    t["i8_vals"] = (torch.arange(4, dtype=torch.int64) * 85 - 128).to(torch.int8)  # 85 i - 128
    t["f16_vals"] = torch.arange(3, dtype=torch.float16) * 1.5 - 1.0  # 1.5 i - 1
    t["bool_vals"] = torch.arange(5) % 2 == 1  # i odd
    t["scalar_f64"] = torch.tensor(3.5, dtype=torch.float64)  # shape [], 3.5
    t["empty_f32"] = torch.zeros(2, 0, dtype=torch.float32)  # shape [2, 0], no bytes
    t["i64_3d"] = torch.arange(24, dtype=torch.int64).reshape(2, 3, 4) * -1  # -i
    t["f32_col"] = (torch.arange(4, dtype=torch.float32) / 4).reshape(4, 1)  # i / 4
    return t


def load_checked(path):
    """safetensors_io.load, except for 0-element tensors (built from the
    header's shape) and BOOL tensors (converted back to bool)."""
    import json
    import struct
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    empty = {k for k, h in header.items() if h["data_offsets"][0] == h["data_offsets"][1]}
    if empty:
        # write a copy without the empty tensors for safetensors_io.load
        keep = {k: h for k, h in header.items() if k not in empty}
        meta = json.loads(data[8:8 + n]).get("__metadata__")
        if meta is not None:
            keep = {"__metadata__": meta, **keep}
        h = json.dumps(keep, separators=(",", ":")).encode()
        tmp = path + ".check-tmp"
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data[8 + n:])
        try:
            out, meta = safetensors_io.load(tmp)
        finally:
            os.remove(tmp)
    else:
        out, meta = safetensors_io.load(path)
    by_name = {v: k for k, v in ((k, v[0]) for k, v in safetensors_io._DTYPES.items())}
    res = {}
    for k, h in header.items():
        if k in empty:
            res[k] = torch.zeros(h["shape"], dtype=by_name[h["dtype"]])
        elif h["dtype"] == "BOOL":
            res[k] = out[k].to(torch.bool)
        else:
            res[k] = out[k]
    return res, meta


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        back, meta = load_checked(sys.argv[2])
        print("metadata", meta)
        for k, v in back.items():
            print(k, v.dtype, list(v.shape), v.flatten().tolist())
        return
    t = tensors()
    safetensors_io.save(OUT, t, METADATA)
    back, meta = load_checked(OUT)
    assert meta == METADATA, meta
    assert list(back) == list(t)
    for name, v in t.items():
        assert back[name].dtype == v.dtype and back[name].shape == v.shape, name
        assert torch.equal(back[name], v), name
    with open(OUT, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes, header {n} bytes, {len(t)} tensors")


if __name__ == "__main__":
    main()
