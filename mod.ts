/**
 * selfish-rnn: sparse recurrent language models trained from scratch with hand-written WGSL
 * compute shaders on WebGPU (Selfish-RNN, Liu et al., ICML 2021, and its baselines).
 *
 * This module is the public API. It has no dependencies and needs no import map.
 *
 * @example
 * ```ts ignore
 * import { trainModel } from "./mod.ts";
 * const summary = await trainModel({ method: "selfish", density: 0.33, "max-steps": 200 });
 * console.log(summary.testPpl, summary.optimalPpl);
 * ```
 *
 * @example
 * ```ts ignore
 * import { Gpu, matmul } from "./mod.ts";
 * const gpu = await Gpu.create();
 * const x = gpu.upload([2, 3], [1, 2, 3, 4, 5, 6]);
 * const w = gpu.upload([4, 3], new Float32Array(12).fill(0.5));
 * const y = gpu.tensor([2, 4]);
 * matmul(gpu, { a: x, b: w, c: y, transB: true }); // y = x·wᵀ
 * console.log(await gpu.read(y));
 * ```
 *
 * @module
 */

export * from "./kernels/runtime/device.ts";
export * from "./kernels/runtime/tensor.ts";
export * from "./kernels/runtime/kernel.ts";
export * from "./kernels/runtime/runtime.ts";
export * from "./kernels/dense/matmul.ts";
export * from "./kernels/dense/elementwise.ts";
export * from "./kernels/cells/lstm_cell.ts";
export * from "./kernels/cells/dropout.ts";
export * from "./kernels/random/random.ts";
export * from "./kernels/cells/embedding.ts";
export * from "./kernels/cells/softmax_ce.ts";
export * from "./kernels/dense/reduce.ts";
export * from "./kernels/optim/optim.ts";
export * from "./kernels/sparse/scan.ts";
export * from "./kernels/sparse/sparse_matrix.ts";
export * from "./kernels/sparse/sparse_convert.ts";
export * from "./kernels/sparse/spmm.ts";
export * from "./kernels/sparse/sddmm.ts";
export * from "./kernels/sparse/sparse_embedding.ts";
export * from "./kernels/sparse/sparse_update.ts";
export * from "./kernels/select/topk.ts";
export * from "./kernels/select/mask_update.ts";
export * from "./kernels/dense/transpose.ts";
export * from "./models/params.ts";
export * from "./models/model.ts";
export * from "./models/families.ts";
export * from "./models/lstm/lstm_lm.ts";
export * from "./models/lstm/family.ts";
export * from "./models/rhn/rhn_lm.ts";
export * from "./models/rhn/family.ts";
export * from "./models/onlstm/onlstm_lm.ts";
export * from "./models/onlstm/family.ts";
export * from "./models/mos/mos_lm.ts";
export * from "./models/mos/family.ts";
export * from "./models/parts/mos_head.ts";
export * from "./models/parts/stack_head.ts";
export * from "./kernels/cells/mos.ts";
export * from "./models/parts/gated_layer.ts";
export * from "./models/parts/gated_stack.ts";
export * from "./models/parts/weight_drop.ts";
export * from "./kernels/cells/onlstm_cell.ts";
export * from "./kernels/cells/highway_cell.ts";
export * from "./models/parts/embedding_input.ts";
export * from "./models/parts/decoder_head.ts";
export * from "./models/weight_ops.ts";
export * from "./models/sparse_params.ts";
export * from "./pipeline/data/corpus.ts";
export * from "./pipeline/data/vocab.ts";
export * from "./pipeline/data/batches.ts";
export * from "./pipeline/data/synthetic.ts";
export * from "./pipeline/data/errors.ts";
export * from "./pipeline/optimizer.ts";
export * from "./pipeline/checkpoint.ts";
export * from "./pipeline/train.ts";
export * from "./pipeline/config.ts";
export * from "./pipeline/api.ts";
export * from "./pipeline/plan.ts";
export * from "./pipeline/dry_run.ts";
export * from "./pipeline/model_file/safetensors.ts";
export * from "./pipeline/model_file/model_file.ts";
export * from "./pipeline/saved_model.ts";
