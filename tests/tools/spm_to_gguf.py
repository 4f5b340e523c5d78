#!/usr/bin/env python3
"""Writes a GGUF file that carries a SentencePiece tokenizer.model's vocabulary the way
llama.cpp's converter stores it (tokenizer.ggml.model = "llama": tokens, scores, token_type,
BOS/EOS/UNK/PAD ids, add_space_prefix), and no tensors. The tests use it to check that the
engine's GGUF SPM path gives the same ids as the .model file.

  python tests/tools/spm_to_gguf.py tokenizer.model out.gguf

Needs only the gguf package: the .model protobuf (sentencepiece_model.proto) is read here.
"""
import struct
import sys

import gguf


def varint(b, i):
    value, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return value, i


def fields(b):
    """(number, wire type, value) of each field of a protobuf message."""
    i, out = 0, []
    while i < len(b):
        key, i = varint(b, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(b, i)
        elif wire == 1:
            value, i = b[i:i + 8], i + 8
        elif wire == 5:
            value, i = b[i:i + 4], i + 4
        elif wire == 2:
            n, i = varint(b, i)
            value, i = b[i:i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def as_int32(v):
    return v - (1 << 64) if v >= (1 << 63) else v


def main():
    model_path, out_path = sys.argv[1], sys.argv[2]
    proto = open(model_path, "rb").read()
    tokens, scores, types = [], [], []
    trainer, normalizer = {}, {}
    for number, wire, value in fields(proto):
        if number == 1:  # ModelProto.pieces
            piece = {n: v for n, _, v in fields(value)}
            tokens.append(piece[1].decode("utf-8"))
            scores.append(struct.unpack("<f", piece[2])[0] if 2 in piece else 0.0)
            types.append(piece.get(3, 1))  # SentencePiece.Type, NORMAL by default
        elif number == 2:  # trainer_spec
            trainer = {n: v for n, _, v in fields(value)}
        elif number == 3:  # normalizer_spec
            normalizer = {n: v for n, _, v in fields(value)}

    writer = gguf.GGUFWriter(out_path, "llama")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    # TrainerSpec: unk_id 40 (default 0), bos_id 41 (1), eos_id 42 (2), pad_id 43 (-1).
    for field, default, add in ((40, 0, writer.add_unk_token_id), (41, 1, writer.add_bos_token_id),
                                (42, 2, writer.add_eos_token_id), (43, -1, writer.add_pad_token_id)):
        value = as_int32(trainer.get(field, default))
        if value >= 0:
            add(value)
    writer.add_add_space_prefix(bool(normalizer.get(3, 1)))  # NormalizerSpec.add_dummy_prefix
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
