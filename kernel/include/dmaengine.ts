/**
 * <linux/dmaengine.h> plus the provider helpers of drivers/dma/dmaengine.h: the DMA engine
 * API for clients (peripheral drivers that borrow a controller's channel) and providers (DMA
 * controller drivers). Semantics: reference §10.
 *
 * Client flow: dma_request_chan -> dmaengine_slave_config -> map buffers against
 * dmaengine_get_dma_device(chan) -> dmaengine_prep_* -> set callback -> dmaengine_submit ->
 * dma_async_issue_pending -> callback (tasklet context) / dmaengine_tx_status ->
 * dmaengine_terminate_sync -> unmap -> dma_release_channel.
 */

export {
  type dma_cookie_t, DMA_MIN_COOKIE, DMA_MAX_COOKIE,
  DMA_COMPLETE, DMA_IN_PROGRESS, DMA_PAUSED, DMA_ERROR, DMA_OUT_OF_ORDER, type dma_status,
  DMA_MEM_TO_MEM, DMA_MEM_TO_DEV, DMA_DEV_TO_MEM, DMA_DEV_TO_DEV, DMA_TRANS_NONE, type dma_transfer_direction,
  DMA_MEMCPY, DMA_XOR, DMA_PQ, DMA_XOR_VAL, DMA_PQ_VAL, DMA_MEMSET, DMA_MEMSET_SG, DMA_INTERRUPT, DMA_PRIVATE,
  DMA_ASYNC_TX, DMA_SLAVE, DMA_CYCLIC, DMA_INTERLEAVE, DMA_COMPLETION_NO_ORDER, DMA_REPEAT, DMA_LOAD_EOT,
  type dma_transaction_type,
  DMA_PREP_INTERRUPT, DMA_CTRL_ACK, DMA_PREP_PQ_DISABLE_P, DMA_PREP_PQ_DISABLE_Q, DMA_PREP_CONTINUE, DMA_PREP_FENCE,
  DMA_CTRL_REUSE, DMA_PREP_CMD, DMA_PREP_REPEAT, DMA_PREP_LOAD_EOT,
  DMA_SLAVE_BUSWIDTH_UNDEFINED, DMA_SLAVE_BUSWIDTH_1_BYTE, DMA_SLAVE_BUSWIDTH_2_BYTES, DMA_SLAVE_BUSWIDTH_3_BYTES,
  DMA_SLAVE_BUSWIDTH_4_BYTES, DMA_SLAVE_BUSWIDTH_8_BYTES, DMA_SLAVE_BUSWIDTH_16_BYTES, DMA_SLAVE_BUSWIDTH_32_BYTES,
  DMA_SLAVE_BUSWIDTH_64_BYTES, type dma_slave_buswidth,
  DMA_RESIDUE_GRANULARITY_DESCRIPTOR, DMA_RESIDUE_GRANULARITY_SEGMENT, DMA_RESIDUE_GRANULARITY_BURST,
  DMA_TRANS_NOERROR, DMA_TRANS_READ_FAILED, DMA_TRANS_WRITE_FAILED, DMA_TRANS_ABORTED, type dmaengine_tx_result,
  DMA_XFER_BURST, DMA_XFER_CYCLE_STEAL, DMA_XFER_TRANSPARENT, type dma_xfer_mode_config,
  type dma_cap_mask_t, type dma_slave_config, dma_tx_state, type dmaengine_result,
  type dma_async_tx_callback, type dma_async_tx_callback_result,
  dma_async_tx_descriptor, dma_chan, dma_device, dma_slave_caps,
} from "../dmaengine/defs.ts";

// Clients
export {
  dma_request_chan, dma_request_chan_by_mask, dma_release_channel,
  dma_cap_zero, dma_cap_set, dma_cap_clear, dma_has_cap,
} from "../dmaengine/core.ts";
export {
  dmaengine_get_dma_device, dmaengine_slave_config,
  dmaengine_prep_slave_sg, dmaengine_prep_slave_single, dmaengine_prep_dma_cyclic, dmaengine_prep_dma_memcpy,
  dmaengine_submit, dma_submit_error, dma_async_issue_pending, dmaengine_tx_status, dma_async_is_tx_complete,
  dmaengine_terminate_async, dmaengine_terminate_all, dmaengine_synchronize, dmaengine_terminate_sync,
  dmaengine_pause, dmaengine_resume, dma_get_slave_caps,
} from "../dmaengine/client.ts";

// Providers
export {
  dma_async_device_register, dma_async_device_unregister, dmaenginem_async_device_register,
} from "../dmaengine/core.ts";
export {
  dma_cookie_init, dma_cookie_assign, dma_cookie_complete, dma_cookie_status, dma_async_is_complete,
  dma_set_residue, dma_set_in_flight_bytes,
  type dmaengine_desc_callback, dmaengine_desc_get_callback, dmaengine_desc_callback_valid,
  dmaengine_desc_callback_invoke, dmaengine_desc_get_callback_invoke,
} from "../dmaengine/cookie.ts";
