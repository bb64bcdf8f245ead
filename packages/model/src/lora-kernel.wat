;; The LoRA merge kernel of @polyglot/model (src/lora-kernel.ts), hand-written WebAssembly with 128-bit SIMD.
;;
;;   W[m, n] += s · Σ_k P[m, k] · Q[k, n]      for m < M, n < N, k = 0 … R-1 in that order
;;
;; in float32, each lane exactly as the JS reference kernel computes it: the product rounded to float32
;; (f32x4.mul), added to a float32 accumulator that starts at +0 (f32x4.add, no fused multiply-add), the sum
;; multiplied by s (rounded), added to W (rounded). So the result is bit-identical to the JS reference.
;;
;; For W' = W + s·B·A: P = B [out, r], Q = A [r, in] (fan_in_fan_out: P = Aᵀ, Q = Bᵀ).
;;
;; Layout (byte addresses into the imported memory; the caller copies the operands in and W back out):
;;   W  rows of ldw floats; M a multiple of 4, N a multiple of 8 (the caller pads).
;;   P  packed by groups of 4 rows: group g, step k holds P[4g … 4g+3, k] as 4 consecutive floats, so that one
;;      16-byte row of the pack feeds four broadcasts with constant offsets.
;;   Q  rows of ldq floats.
;; R must be at least 1.
;;
;; Register blocking: 4 rows × 8 columns of W per inner loop (8 accumulators, 2 Q vectors, 1 broadcast: 11 of
;; the 16 SIMD registers of x86-64 and far fewer than arm64's 32). The caller blocks the columns so that the
;; R × N slice of Q it passes stays in the L2 cache while every row of the block streams past it.
;;
;; Regenerate src/lora-kernel-wasm.ts after an edit: `pnpm -F @polyglot/lora-merge gen-wasm` (needs wat2wasm,
;; from Debian's wabt package; run as `wat2wasm --enable-threads`, for the shared memory).
(module
  ;; The memory is the caller's, shared, so that worker threads can run the kernel on other rows of the same
  ;; operands at the same time (each with its own instance of this module).
  (import "env" "memory" (memory 1 65536 shared))

  (func (export "merge")
    (param $w i32) (param $ldw i32)
    (param $p i32)
    (param $q i32) (param $ldq i32)
    (param $M i32) (param $N i32) (param $R i32)
    (param $s f32)
    (local $m i32) (local $n i32) (local $k i32)
    (local $pg i32) (local $pp i32) (local $qq i32) (local $wp i32)
    (local $ldwb i32) (local $ldqb i32) (local $pstride i32)
    (local $sv v128) (local $b v128) (local $x0 v128) (local $x1 v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local $c4 v128) (local $c5 v128) (local $c6 v128) (local $c7 v128)
    ;; strides in bytes
    (local.set $ldwb (i32.shl (local.get $ldw) (i32.const 2)))
    (local.set $ldqb (i32.shl (local.get $ldq) (i32.const 2)))
    (local.set $pstride (i32.shl (local.get $R) (i32.const 4))) ;; one packed group: R × 4 floats
    (local.set $sv (f32x4.splat (local.get $s)))
    (local.set $pg (local.get $p))
    (block $rows_done
      (loop $rows ;; groups of 4 rows of W
        (br_if $rows_done (i32.ge_u (local.get $m) (local.get $M)))
        (local.set $n (i32.const 0))
        (block $cols_done
          (loop $cols ;; 8 columns at a time
            (br_if $cols_done (i32.ge_u (local.get $n) (local.get $N)))
            (local.set $c0 (v128.const i32x4 0 0 0 0))
            (local.set $c1 (v128.const i32x4 0 0 0 0))
            (local.set $c2 (v128.const i32x4 0 0 0 0))
            (local.set $c3 (v128.const i32x4 0 0 0 0))
            (local.set $c4 (v128.const i32x4 0 0 0 0))
            (local.set $c5 (v128.const i32x4 0 0 0 0))
            (local.set $c6 (v128.const i32x4 0 0 0 0))
            (local.set $c7 (v128.const i32x4 0 0 0 0))
            (local.set $pp (local.get $pg))
            (local.set $qq (i32.add (local.get $q) (i32.shl (local.get $n) (i32.const 2))))
            (local.set $k (local.get $R))
            (loop $ks ;; k = 0 … R-1: c[row] += P[row, k] · Q[k, n … n+7]
              (local.set $x0 (v128.load (local.get $qq)))
              (local.set $x1 (v128.load offset=16 (local.get $qq)))
              (local.set $b (v128.load32_splat (local.get $pp)))
              (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $b) (local.get $x0))))
              (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $b) (local.get $x1))))
              (local.set $b (v128.load32_splat offset=4 (local.get $pp)))
              (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $b) (local.get $x0))))
              (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $b) (local.get $x1))))
              (local.set $b (v128.load32_splat offset=8 (local.get $pp)))
              (local.set $c4 (f32x4.add (local.get $c4) (f32x4.mul (local.get $b) (local.get $x0))))
              (local.set $c5 (f32x4.add (local.get $c5) (f32x4.mul (local.get $b) (local.get $x1))))
              (local.set $b (v128.load32_splat offset=12 (local.get $pp)))
              (local.set $c6 (f32x4.add (local.get $c6) (f32x4.mul (local.get $b) (local.get $x0))))
              (local.set $c7 (f32x4.add (local.get $c7) (f32x4.mul (local.get $b) (local.get $x1))))
              (local.set $pp (i32.add (local.get $pp) (i32.const 16)))
              (local.set $qq (i32.add (local.get $qq) (local.get $ldqb)))
              (br_if $ks (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))
            ;; W[m … m+3, n … n+7] += c · s
            (local.set $wp
              (i32.add (local.get $w)
                (i32.add (i32.mul (local.get $m) (local.get $ldwb)) (i32.shl (local.get $n) (i32.const 2)))))
            (v128.store (local.get $wp)
              (f32x4.add (v128.load (local.get $wp)) (f32x4.mul (local.get $c0) (local.get $sv))))
            (v128.store offset=16 (local.get $wp)
              (f32x4.add (v128.load offset=16 (local.get $wp)) (f32x4.mul (local.get $c1) (local.get $sv))))
            (local.set $wp (i32.add (local.get $wp) (local.get $ldwb)))
            (v128.store (local.get $wp)
              (f32x4.add (v128.load (local.get $wp)) (f32x4.mul (local.get $c2) (local.get $sv))))
            (v128.store offset=16 (local.get $wp)
              (f32x4.add (v128.load offset=16 (local.get $wp)) (f32x4.mul (local.get $c3) (local.get $sv))))
            (local.set $wp (i32.add (local.get $wp) (local.get $ldwb)))
            (v128.store (local.get $wp)
              (f32x4.add (v128.load (local.get $wp)) (f32x4.mul (local.get $c4) (local.get $sv))))
            (v128.store offset=16 (local.get $wp)
              (f32x4.add (v128.load offset=16 (local.get $wp)) (f32x4.mul (local.get $c5) (local.get $sv))))
            (local.set $wp (i32.add (local.get $wp) (local.get $ldwb)))
            (v128.store (local.get $wp)
              (f32x4.add (v128.load (local.get $wp)) (f32x4.mul (local.get $c6) (local.get $sv))))
            (v128.store offset=16 (local.get $wp)
              (f32x4.add (v128.load offset=16 (local.get $wp)) (f32x4.mul (local.get $c7) (local.get $sv))))
            (local.set $n (i32.add (local.get $n) (i32.const 8)))
            (br $cols)))
        (local.set $m (i32.add (local.get $m) (i32.const 4)))
        (local.set $pg (i32.add (local.get $pg) (local.get $pstride)))
        (br $rows))))
)
