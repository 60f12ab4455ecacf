/**
 * `TTT_WORKBENCH_FUSED=0` runs the models op by op on webgpu instead of through the fused kernels
 * (core/webgpu-program.ts), e.g. for `npm run bench` to compare the two. Read by each entry point that runs models:
 * the CLI and every stage worker (a thread of its own, with its own copy of the switch).
 */
import { allowFusedKernels } from '../core/webgpu-program.js';

export function applyKernelSwitch(env: NodeJS.ProcessEnv = process.env): void {
  allowFusedKernels(env.TTT_WORKBENCH_FUSED !== '0');
}
