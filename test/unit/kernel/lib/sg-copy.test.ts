import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import {
  sg_array,
  sg_copy_from_buffer,
  sg_copy_to_buffer,
  sg_init_table,
  sg_pcopy_from_buffer,
  sg_pcopy_to_buffer,
  sg_set_buf,
  sg_zero_buffer,
} from "../../../../kernel/include/scatterlist.ts";
import { kmalloc } from "../../../../kernel/mm/slab-api.ts";
import { copy_from_user, copy_to_user } from "../../../../kernel/mm/access.ts";

/** Three kmalloc buffers of 100, 300 and 50 bytes as one list. */
function boot() {
  const { kernel: k } = bareKernel("arm64-noncoherent");
  const bufs = [kmalloc(100, 0), kmalloc(300, 0), kmalloc(50, 0)];
  const sg = sg_array(3);
  sg_init_table(sg, 3);
  [100, 300, 50].forEach((len, i) => sg_set_buf(sg[i], bufs[i], len));
  const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
  const readAll = () => {
    const out = new Uint8Array(450);
    copy_to_user(out.subarray(0, 100), bufs[0], 100);
    copy_to_user(out.subarray(100, 400), bufs[1], 300);
    copy_to_user(out.subarray(400), bufs[2], 50);
    return out;
  };
  return { k, sg, bufs, bytes, readAll };
}

describe("sg_copy_from_buffer / sg_copy_to_buffer", () => {
  it("scatter a host buffer over the entries and gather it back", () => {
    const { sg, bytes, readAll } = boot();
    const data = bytes(450);
    expect(sg_copy_from_buffer(sg, 3, data, 450)).toBe(450);
    expect(readAll()).toEqual(data);
    const back = new Uint8Array(450);
    expect(sg_copy_to_buffer(sg, 3, back, 450)).toBe(450);
    expect(back).toEqual(data);
  });

  it("copy less when the list or nents is shorter than the buffer", () => {
    const { sg, bytes } = boot();
    expect(sg_copy_from_buffer(sg, 3, bytes(1000), 1000)).toBe(450);
    expect(sg_copy_from_buffer(sg, 2, bytes(1000), 1000)).toBe(400);
    expect(sg_copy_to_buffer(sg, 3, new Uint8Array(10), 10)).toBe(10);
  });

  it("accept a kernel address as the linear side, as Linux does", () => {
    const { sg, bytes } = boot();
    const lin = kmalloc(450, 0);
    copy_from_user(lin, bytes(450, 3));
    expect(sg_copy_from_buffer(sg, 3, lin, 450)).toBe(450);
    const lin2 = kmalloc(450, 0);
    sg_copy_to_buffer(sg, 3, lin2, 450);
    const out = new Uint8Array(450);
    copy_to_user(out, lin2);
    expect(out).toEqual(bytes(450, 3));
  });
});

describe("sg_pcopy_* and sg_zero_buffer", () => {
  it("start skip bytes into the list, across entry boundaries", () => {
    const { sg, bytes, readAll } = boot();
    sg_copy_from_buffer(sg, 3, new Uint8Array(450), 450);
    expect(sg_pcopy_from_buffer(sg, 3, bytes(200), 200, 90)).toBe(200);
    const all = readAll();
    expect(all.subarray(90, 290)).toEqual(bytes(200));
    expect(all[89]).toBe(0);
    expect(all[290]).toBe(0);
    const out = new Uint8Array(200);
    expect(sg_pcopy_to_buffer(sg, 3, out, 200, 90)).toBe(200);
    expect(out).toEqual(bytes(200));
    expect(sg_pcopy_to_buffer(sg, 3, out, 200, 440)).toBe(10);
  });

  it("sg_zero_buffer zeroes a range", () => {
    const { sg, bytes, readAll } = boot();
    sg_copy_from_buffer(sg, 3, bytes(450), 450);
    expect(sg_zero_buffer(sg, 3, 320, 50)).toBe(320);
    const all = readAll();
    expect(all.subarray(50, 370).every((b) => b === 0)).toBe(true);
    expect(all[49]).toBe(bytes(450)[49]);
    expect(all[370]).toBe(bytes(450)[370]);
  });
});
