/**
 * Kernel stack buffers: with_stack_buffer(size, fn) stands in for a local array in a C
 * function (`u8 buf[64];`). It exists so the simulator can show why DMA to the stack is a bug
 * (dma-debug reports it as map-stack-memory); a correct driver never maps one.
 */

export { with_stack_buffer } from "../lib/kstack.ts";
