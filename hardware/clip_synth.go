package hardware

import (
	"math/rand/v2"
)

// The synthetic field-camera streams of ClipSynth2M and ClipSynth2MGOP2s:
// what a camera's main stream carries in the field, 1920x1080 H.264 at
// 25 fps, 2 Mbit/s, an IDR every 10 s (or 2 s). No clip at that bitrate is
// embedded (it would weigh 2.5 MB per GOP), so the stream is generated:
// real parameter sets and slice headers, and slice data of pseudo-random
// bytes with the sizes an encoder gives such a stream (an IDR about 13
// times a P picture, P pictures of about 9.5 KB, ±30%). It does not decode
// to a picture; a recorder, a relay or a muxer does not look past the slice
// header.
const (
	synthWidth  = 1920
	synthHeight = 1080
	// synthSeed fixes the stream: the same bytes at every start.
	synthSeed = 0x5ca1ab1e
)

// synthGOP is the shape of one generated GOP.
type synthGOP struct {
	frames int
	// bytes is the GOP's length at 2 Mbit/s, parameter sets and NAL
	// headers included.
	bytes int
	// idrBytes is the IDR picture of the GOP.
	idrBytes int
}

// synthShape is the GOP of synthetic clip c.
func synthShape(c Clip) synthGOP {
	if c == ClipSynth2MGOP2s {
		return synthGOP{frames: 2 * clipFPS, bytes: 2 * 2_000_000 / 8, idrBytes: 100_000}
	}
	return synthGOP{frames: 10 * clipFPS, bytes: 10 * 2_000_000 / 8, idrBytes: 125_000}
}

// synthClip generates one GOP of a synthetic stream, which the feeder
// loops.
func synthClip(g synthGOP) *clipData {
	rng := rand.New(rand.NewPCG(synthSeed, synthSeed))
	d := &clipData{sps: synthSPS(), pps: synthPPS()}

	// P sizes: uniform within ±30% of their mean, then scaled so that the
	// GOP is exactly g.bytes.
	pBudget := g.bytes - g.idrBytes - len(d.sps) - len(d.pps)
	weights := make([]float64, g.frames-1)
	total := 0.0
	for i := range weights {
		weights[i] = 0.7 + 0.6*rng.Float64()
		total += weights[i]
	}
	sizes := make([]int, len(weights))
	used := 0
	for i, w := range weights {
		sizes[i] = int(float64(pBudget) * w / total)
		used += sizes[i]
	}
	sizes[len(sizes)-1] += pBudget - used

	d.aus = append(d.aus, [][]byte{d.sps, d.pps, synthSlice(rng, true, 0, g.idrBytes)})
	for i, size := range sizes {
		d.aus = append(d.aus, [][]byte{synthSlice(rng, false, i+1, size)})
	}
	return d
}

// synthSPS is a constrained-baseline SPS of 1920x1080 (1088 coded, cropped
// by 8 rows), level 4.0, frame_num of 8 bits, POC type 2, no VUI.
func synthSPS() []byte {
	var w bitWriter
	w.bits(0x67, 8) // forbidden 0, nal_ref_idc 3, type 7
	w.bits(66, 8)   // profile_idc: baseline
	w.bits(0xc0, 8) // constraint_set0 and set1: constrained baseline
	w.bits(40, 8)   // level_idc
	w.ue(0)         // seq_parameter_set_id
	w.ue(4)         // log2_max_frame_num_minus4
	w.ue(2)         // pic_order_cnt_type
	w.ue(1)         // max_num_ref_frames
	w.bits(0, 1)    // gaps_in_frame_num_value_allowed_flag
	w.ue(synthWidth/16 - 1)
	w.ue((synthHeight+15)/16 - 1)
	w.bits(1, 1) // frame_mbs_only_flag
	w.bits(1, 1) // direct_8x8_inference_flag
	w.bits(1, 1) // frame_cropping_flag
	w.ue(0)      // left
	w.ue(0)      // right
	w.ue(0)      // top
	w.ue(((synthHeight+15)/16*16 - synthHeight) / 2)
	w.bits(0, 1) // vui_parameters_present_flag
	w.trailing()
	return w.buf
}

// synthPPS is the PPS that goes with synthSPS: CAVLC, one slice group.
func synthPPS() []byte {
	var w bitWriter
	w.bits(0x68, 8) // nal_ref_idc 3, type 8
	w.ue(0)         // pic_parameter_set_id
	w.ue(0)         // seq_parameter_set_id
	w.bits(0, 1)    // entropy_coding_mode_flag
	w.bits(0, 1)    // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)         // num_slice_groups_minus1
	w.ue(0)         // num_ref_idx_l0_default_active_minus1
	w.ue(0)         // num_ref_idx_l1_default_active_minus1
	w.bits(0, 1)    // weighted_pred_flag
	w.bits(0, 2)    // weighted_bipred_idc
	w.se(0)         // pic_init_qp_minus26
	w.se(0)         // pic_init_qs_minus26
	w.se(0)         // chroma_qp_index_offset
	w.bits(1, 1)    // deblocking_filter_control_present_flag
	w.bits(0, 1)    // constrained_intra_pred_flag
	w.bits(0, 1)    // redundant_pic_cnt_present_flag
	w.trailing()
	return w.buf
}

// synthSlice is one slice of a whole picture, size bytes long: a real
// header (first_mb_in_slice 0, the slice type, frame_num) and pseudo-random
// data with no zero byte, so that no start code or emulation-prevention
// pattern appears in it.
func synthSlice(rng *rand.Rand, idr bool, frameNum, size int) []byte {
	var w bitWriter
	if idr {
		w.bits(0x65, 8) // nal_ref_idc 3, type 5
	} else {
		w.bits(0x41, 8) // nal_ref_idc 2, type 1
	}
	w.ue(0) // first_mb_in_slice
	if idr {
		w.ue(7) // slice_type: I, all slices
	} else {
		w.ue(5) // slice_type: P, all slices
	}
	w.ue(0)                         // pic_parameter_set_id
	w.bits(uint64(frameNum%256), 8) // frame_num
	if idr {
		w.ue(0) // idr_pic_id
	}
	w.bits(1, 1) // end the header on a set bit, then pad with ones
	for w.n != 0 {
		w.bits(1, 1)
	}
	out := make([]byte, size)
	n := copy(out, w.buf)
	for i := n; i < size; i++ {
		b := byte(rng.Uint32())
		if b == 0 {
			b = 0x55
		}
		out[i] = b
	}
	return out
}

// bitWriter writes the bit fields of H.264 headers, most significant bit
// first.
type bitWriter struct {
	buf []byte
	n   int // bits used in the last byte, 0 when it is full
}

func (w *bitWriter) bits(v uint64, count int) {
	for i := count - 1; i >= 0; i-- {
		if w.n == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>uint(i)&1 != 0 {
			w.buf[len(w.buf)-1] |= 0x80 >> uint(w.n)
		}
		w.n = (w.n + 1) % 8
	}
}

// ue writes an unsigned Exp-Golomb code.
func (w *bitWriter) ue(v uint64) {
	v++
	length := 0
	for x := v; x > 1; x >>= 1 {
		length++
	}
	w.bits(0, length)
	w.bits(v, length+1)
}

// se writes a signed Exp-Golomb code.
func (w *bitWriter) se(v int64) {
	if v > 0 {
		w.ue(uint64(2*v - 1))
		return
	}
	w.ue(uint64(-2 * v))
}

// trailing writes rbsp_trailing_bits: a one, then zeros to the byte.
func (w *bitWriter) trailing() {
	w.bits(1, 1)
	for w.n != 0 {
		w.bits(0, 1)
	}
}
