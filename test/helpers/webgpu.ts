/**
 * Whether the webgpu tests run: they need a WebGPU adapter (on a machine without a GPU, Mesa's lavapipe). Without
 * one they skip, unless TTT_REQUIRE_WEBGPU is set (CI sets it), in which case they run and fail, naming the reason.
 */
import { probeWebGPU } from '../../engine/core/webgpu-adapter.js';

const required = (process.env.TTT_REQUIRE_WEBGPU ?? '') !== '' && process.env.TTT_REQUIRE_WEBGPU !== '0';
const probe = await probeWebGPU();

export const webgpuTestsRun = probe.ok || required;

