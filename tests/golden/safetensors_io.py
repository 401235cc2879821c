"""safetensors_io.py: write and read safetensors files with the standard library
and PyTorch only (Debian has no `safetensors` package).

Format: 8-byte little-endian header length N, N bytes of JSON header
({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}),
padded with spaces so the data starts 8-byte aligned, then the tensors' bytes,
contiguous, in header order.
"""
import json
import struct

import torch

_DTYPES = {
    torch.float32: ("F32", 4), torch.float64: ("F64", 8), torch.int32: ("I32", 4),
    torch.int64: ("I64", 8), torch.uint8: ("U8", 1), torch.int8: ("I8", 1), torch.bool: ("BOOL", 1),
    torch.float16: ("F16", 2),
}
_BY_NAME = {v[0]: k for k, v in _DTYPES.items()}


def save(path, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor (any device/layout; written contiguous, CPU)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        if t.dtype not in _DTYPES:
            raise ValueError(f"{name}: dtype {t.dtype} not supported")
        dt, size = _DTYPES[t.dtype]
        raw = t.numpy().tobytes() if t.dtype != torch.bool else t.to(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """Returns (dict name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dt = _BY_NAME[h["dtype"]]
        raw_dt = dt if dt != torch.bool else torch.uint8
        if e == b:  # torch.frombuffer refuses an empty buffer
            t = torch.zeros(h["shape"], dtype=raw_dt)
        else:
            t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=raw_dt).reshape(h["shape"]).clone()
        out[name] = t.to(torch.bool) if dt == torch.bool else t
    return out, meta
