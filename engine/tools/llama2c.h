// Imports Andrej Karpathy's llama2.c checkpoints (the legacy "version 0" format of run.c) as Hugging Face
// Llama models.
//
// The file: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
// vocab_size means the classifier is not shared with the embedding and is stored last), then fp32 tensors:
// token_embedding [vocab, dim], rms_att [layers, dim], wq [layers, dim, dim], wk [layers, kv_dim, dim],
// wv [layers, kv_dim, dim], wo [layers, dim, dim], rms_ffn [layers, dim], w1 [layers, hidden, dim],
// w2 [layers, dim, hidden], w3 [layers, hidden, dim], rms_final [dim], freq_cis_real and freq_cis_imag
// [seq_len, head_size / 2] (unused: RoPE is recomputed), then wcls [vocab, dim] when unshared.
//
// Conversion: w1/w3/w2 become gate/up/down; the rows of wq and wk are permuted from llama2.c's interleaved
// RoPE pairs to Hugging Face's rotate-half layout, exactly as transformers' convert_llama_weights_to_hf.py
// does. The file size must match the header exactly. Errors name the file. Pure functions of their inputs.
#pragma once

#include <filesystem>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/io/host_model.h"

namespace nibble {

// The checkpoint as a Llama HostModel (fp32; LlamaForCausalLM, rms_norm_eps 1e-5, rope_theta 10000,
// max_position_embeddings = seq_len, tied embeddings when vocab_size > 0, bos 1, eos 2). Tensors that need
// no permutation are zero-copy views into the memory-mapped file.
absl::StatusOr<HostModel> ReadLlama2c(const std::filesystem::path& model_bin);

// Writes `out_dir` (created when missing) as a Hugging Face model directory transformers can load:
// config.json, model.safetensors (fp32), `tokenizer.model`, tokenizer_config.json and generation_config.json,
// whose eos_token_id lists EOS and BOS: llama2.c's models end a story with BOS, never EOS. `tokenizer_model` is
// either a SentencePiece model (such as llama2.c's tok512.model), copied as it is, or llama2.c's own tokenizer.bin
// (such as tok512.bin), converted back into a SentencePiece model (llama2c_tokenizer.h says how; it must hold
// the checkpoint's vocab_size tokens). NotFound when `tokenizer_model` is missing; InvalidArgument naming it
// when it is neither or a malformed tokenizer.bin; nothing is written then.
absl::Status ImportLlama2c(const std::filesystem::path& model_bin, const std::filesystem::path& tokenizer_model,
                           const std::filesystem::path& out_dir);

}  // namespace nibble
