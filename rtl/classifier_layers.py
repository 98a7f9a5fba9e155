"""The two layers of the classifier (see :mod:`spykehw.rtl.classifier`, "Architecture"):
:class:`HiddenLayer` (stage A) and :class:`OutputLayer` (stage B). They meet at the hidden bits'
double-buffered memory, which the classifier holds with the banks' *full* flags.
"""

from __future__ import annotations

from typing import Sequence

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .classifier_config import (
    ClassifierConfig,
    TapSignature,
    hidden_tap_layout,
    logit_tap_layout,
)
from .layouts import feature_layout, index_bits
from .weight_memory import RowPortSignature, WriteBusSignature, lane_init

__all__ = ["HiddenLayer", "OutputLayer", "bank_write_signature", "bank_read_signature"]


def _sign_extend(value, width: int):
    """``value`` (a signed net) sign-extended to ``width`` bits, as an unsigned bit pattern."""
    return Cat(value, value[-1].replicate(width - len(value))) if width > len(value) else value


def _lowest_set_bit(m: Module, value, name: str) -> Signal:
    """Index of the lowest set bit of ``value`` (meaningless when none is set), as a balanced
    tree of multiplexers: ``log2`` levels, not a priority chain as long as ``value``."""
    def tree(bits):
        # (any bit set, index of the lowest set bit within ``bits``)
        if len(bits) == 1:
            return bits[0], Const(0, 0)
        half = 1 << (ceil_log2(len(bits)) - 1)
        lo_any, lo_idx = tree(bits[:half])
        hi_any, hi_idx = tree(bits[half:])
        width = ceil_log2(half)     # lo_idx and hi_idx are at most this wide; half = 1 << width
        return lo_any | hi_any, Mux(lo_any, lo_idx, Cat(hi_idx, Const(0, width - len(hi_idx)), Const(1, 1)))
    out = Signal(range(max(2, len(value))), name=name)
    m.d.comb += out.eq(tree([value[i] for i in range(len(value))])[1])
    return out


def _at_most_one_set(m: Module, value, name: str) -> Signal:
    """1 when at most one bit of ``value`` is set, as a balanced tree (a carry chain through
    ``value - 1`` and a zero test would be twice as deep)."""
    def tree(bits):
        # (any bit set, more than one bit set)
        if len(bits) == 1:
            return bits[0], 0
        half = len(bits) // 2
        lo_any, lo_many = tree(bits[:half])
        hi_any, hi_many = tree(bits[half:])
        return lo_any | hi_any, lo_many | hi_many | (lo_any & hi_any)
    out = Signal(name=name)
    m.d.comb += out.eq(~tree([value[i] for i in range(len(value))])[1])
    return out


def bank_write_signature(cfg: ClassifierConfig) -> wiring.Signature:
    """A word of hidden bits into the double-buffered memory (bank ``b``: words ``b*G ..``)."""
    return wiring.Signature({"en": Out(1), "addr": Out(index_bits(2 * cfg.groups)),
                             "data": Out(cfg.lanes)})


def bank_read_signature(cfg: ClassifierConfig) -> wiring.Signature:
    """A read of the double-buffered hidden bits (always enabled; data one cycle later)."""
    return wiring.Signature({"addr": Out(index_bits(2 * cfg.groups)), "data": In(cfg.lanes)})


class HiddenLayer(wiring.Component):
    """Stage A: each index is registered as a row request (one per cycle); each response word
    is added to ``L`` accumulators (read-modify-write, the bias word read instead during an
    image's first row, so nothing is ever cleared); after the marker and the last response a
    scan of ``G`` cycles writes the hidden bits into the free bank (and the ``o_hidden`` tap),
    and the bank is handed to stage B.

    Members
    -------
    i_features : In(stream.Signature(feature_layout(F)))
    w2 : Out(RowPortSignature(F, L * hidden_weight_bits))
    b2_load : In(WriteBusSignature(G, L * hidden_bias_bits))
        ``b2`` loads (decoded from the classifier's load bus).
    hb_wr : Out(bank_write_signature(cfg))
    bank : Out(1); bank_full : In(1)
        The bank this stage fills next; it still holds bits stage B has not taken.
    handoff : Out(1)
        The bank is full (one cycle).
    o_hidden : Out(TapSignature(hidden_tap_layout(L)))
    idle : Out(1)
        No image in this stage.
    """

    def __init__(self, cfg: ClassifierConfig, *, b2_init: Sequence[int] = ()) -> None:
        self._cfg = cfg
        self._b2_init = tuple(b2_init)
        super().__init__({
            "i_features": In(stream.Signature(feature_layout(cfg.features))),
            "w2": Out(RowPortSignature(cfg.features, cfg.w2_word_bits)),
            "b2_load": In(WriteBusSignature(cfg.groups, cfg.lanes * cfg.hidden_bias_bits)),
            "hb_wr": Out(bank_write_signature(cfg)),
            "bank": Out(1), "bank_full": In(1), "handoff": Out(1),
            "o_hidden": Out(TapSignature(hidden_tap_layout(cfg.lanes))),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        F, G = cfg.features, cfg.groups
        s = {k: Signal(name=k) for k in ("got_last", "accum", "rq_valid", "r_take", "row_done",
                                         "s1_valid", "sc_issue")}
        s["fresh"] = Signal(init=1, name="fresh")   # no row of this image is complete: bias base
        s["pending"] = Signal(range(F + 2), name="pending")   # rows requested and not complete
        s["r_g"] = Signal(range(G), name="r_g") if G > 1 else None
        self._requests(m, s)
        new_acc, acc_data, b2_data, acc_ports = self._accumulators(m, s)
        self._scan(m, s, new_acc, acc_data, b2_data, acc_ports)
        return m

    def _requests(self, m: Module, s: dict) -> None:
        """Each index becomes a registered row request; the register empties into the port.
        Responses: word ``g`` of the oldest row; one word is accumulated per cycle."""
        G = self._cfg.groups
        req, resp, fe = self.w2.req, self.w2.resp, self.i_features
        rq_row = Signal(index_bits(self._cfg.features))
        m.d.comb += [req.valid.eq(s["rq_valid"]), req.payload.eq(rq_row)]
        take = Signal()             # an index token or the marker is accepted
        m.d.comb += [
            fe.ready.eq(s["accum"] & ~s["got_last"] & (~s["rq_valid"] | req.ready)),
            take.eq(fe.valid & fe.ready),
        ]
        row_new = Signal()
        m.d.comb += row_new.eq(take & ~fe.payload.last)
        with m.If(row_new):
            m.d.sync += [s["rq_valid"].eq(1), rq_row.eq(fe.payload.index)]
        with m.Elif(req.ready):
            m.d.sync += s["rq_valid"].eq(0)
        with m.If(take & fe.payload.last):
            m.d.sync += s["got_last"].eq(1)
        m.d.comb += [resp.ready.eq(s["accum"]), s["r_take"].eq(resp.valid & resp.ready)]
        if G > 1:
            r_g, r_last = s["r_g"], Signal()
            m.d.comb += [r_last.eq(r_g == G - 1), s["row_done"].eq(s["r_take"] & r_last)]
            with m.If(s["r_take"]):
                m.d.sync += r_g.eq(Mux(r_last, 0, r_g + 1))
        else:
            m.d.comb += s["row_done"].eq(s["r_take"])
        pending = s["pending"]
        with m.If(row_new & ~s["row_done"]):
            m.d.sync += pending.eq(pending + 1)
        with m.Elif(s["row_done"] & ~row_new):
            m.d.sync += pending.eq(pending - 1)

    def _accumulators(self, m: Module, s: dict):
        """The accumulators (``G`` words of ``L`` lanes) and ``b2``: memories, read one cycle
        ahead; with ``G = 1`` plain registers (a 1-word memory would have a 0-bit address).
        Read-modify-write: read in the response's cycle, add and write back one cycle later."""
        cfg = self._cfg
        L, G, A, WB, BB = cfg.lanes, cfg.groups, cfg.hidden_acc_bits, cfg.hidden_weight_bits, cfg.hidden_bias_bits
        ld = self.b2_load
        ports = None
        if G > 1:
            m.submodules.hidden_acc = acc_mem = memory.Memory(shape=unsigned(L * A), depth=G, init=[])
            acc_wr = acc_mem.write_port()
            # Not transparent: a word is written back one cycle after its read, and with G >= 2
            # the next read of that word is at least two cycles after its read (the other words
            # of the row come between), so a read never meets the write of its own word. (A
            # transparent port would put a bypass multiplexer, with an address comparator
            # fanning out to every accumulator bit, into the read-modify-write loop.)
            acc_rd = acc_mem.read_port()
            m.submodules.b2 = b2_mem = memory.Memory(shape=unsigned(L * BB), depth=G, init=list(self._b2_init))
            b2_wr = b2_mem.write_port()
            b2_rd = b2_mem.read_port()
            m.d.comb += [
                b2_wr.addr.eq(ld.addr), b2_wr.data.eq(ld.data), b2_wr.en.eq(ld.en),
            ]
            acc_data, b2_data = acc_rd.data, b2_rd.data
            ports = (acc_wr, acc_rd, b2_rd)
        else:
            acc_data = Signal(L * A, name="hidden_acc")
            b2_data = Signal(L * BB, name="b2", reset_less=True,   # a parameter: survives soft reset
                             init=self._b2_init[0] if self._b2_init else 0)
            with m.If(ld.en):
                m.d.sync += b2_data.eq(ld.data)
        s1_fresh = Signal()
        m.d.sync += [s["s1_valid"].eq(s["r_take"]), s1_fresh.eq(s["fresh"])]
        new_acc = []
        for lane in range(L):
            # Adder operands are whole nets (a register, a multiplexer): a slice as an operand
            # makes Verilator warn about the extension that Yosys leaves implicit.
            weight = Signal(signed(WB), name=f"s1_w{lane}")
            base = Signal(signed(A), name=f"acc_base{lane}")
            total = Signal(signed(A), name=f"acc_new{lane}")
            m.d.sync += weight.eq(self.w2.resp.payload.word_select(lane, WB))
            m.d.comb += [
                base.eq(Mux(s1_fresh, b2_data.word_select(lane, BB).as_signed(),
                            acc_data.word_select(lane, A).as_signed())),
                # Two's complement: the unsigned sum of A-bit patterns, truncated to A bits, is the
                # signed sum, which A was derived to hold. Both operands are A bits wide (a
                # narrower signed operand makes Verilator warn about the implicit extension).
                total.eq(base.as_unsigned() + _sign_extend(weight, A)),
            ]
            new_acc.append(total)
        return new_acc, acc_data, b2_data, ports

    def _scan(self, m: Module, s: dict, new_acc, acc_data, b2_data, ports) -> None:
        """Scan: read word ``k``; one cycle later threshold its lanes into the bank (and the
        tap). Then the control: ACCUM (indices and responses), SCAN, FINISH (hand the bank
        over)."""
        cfg = self._cfg
        L, G, A, BB = cfg.lanes, cfg.groups, cfg.hidden_acc_bits, cfg.hidden_bias_bits
        sc_issue, fresh, hb_wr, bank = s["sc_issue"], s["fresh"], self.hb_wr, self.bank
        sc_valid = Signal()
        sc_last = Signal()
        m.d.sync += sc_valid.eq(sc_issue)
        if G > 1:
            acc_wr, acc_rd, b2_rd = ports
            r_g = s["r_g"]
            s1_g = Signal(range(G))
            sc_k = Signal(range(G))
            sc_g = Signal(range(G))
            m.d.sync += [s1_g.eq(r_g), sc_g.eq(sc_k), sc_last.eq(sc_issue & (sc_k == G - 1))]
            m.d.comb += [
                acc_wr.addr.eq(s1_g), acc_wr.data.eq(Cat(*new_acc)), acc_wr.en.eq(s["s1_valid"]),
                # Always enabled: the data is used only the cycle after a response or a scan
                # read, so holding it is not needed (an enable would fan out to every bit).
                acc_rd.addr.eq(Mux(sc_issue, sc_k, r_g)),
                b2_rd.addr.eq(Mux(sc_issue, sc_k, r_g)),
                hb_wr.addr.eq(Mux(bank, G + sc_g, sc_g)),
            ]
        else:
            with m.If(s["s1_valid"]):
                m.d.sync += acc_data.eq(Cat(*new_acc))
            m.d.sync += sc_last.eq(sc_issue)
            m.d.comb += hb_wr.addr.eq(bank)
        bits = Signal(L)
        real_lanes = L - cfg.padding_lanes      # lanes of the last word that are hidden units
        for lane in range(L):
            neg = Signal(name=f"hid_neg{lane}")
            m.d.comb += neg.eq(Mux(fresh, b2_data[(lane + 1) * BB - 1], acc_data[(lane + 1) * A - 1]))
            if lane < real_lanes:
                m.d.comb += bits[lane].eq(~neg)
            else:
                m.d.comb += bits[lane].eq(~neg & (sc_g != G - 1))
        m.d.comb += [
            hb_wr.data.eq(bits), hb_wr.en.eq(sc_valid),
            self.o_hidden.valid.eq(sc_valid), self.o_hidden.payload.bits.eq(bits),
            self.o_hidden.payload.last.eq(sc_last),
        ]
        quiet = ~s["rq_valid"] & (s["pending"] == 0) & ~s["s1_valid"]
        with m.FSM(init="ACCUM", name="hidden_fsm"):
            with m.State("ACCUM"):
                m.d.comb += [s["accum"].eq(1), self.idle.eq(fresh & ~s["got_last"] & quiet)]
                with m.If(s["got_last"] & quiet & ~self.bank_full):
                    m.next = "SCAN"
            with m.State("SCAN"):
                m.d.comb += sc_issue.eq(1)
                if G > 1:
                    m.d.sync += sc_k.eq(Mux(sc_k == G - 1, 0, sc_k + 1))
                    with m.If(sc_k == G - 1):
                        m.next = "FINISH"
                else:
                    m.next = "FINISH"
            with m.State("FINISH"):
                # The last word is written now; the bank is handed to stage B.
                m.d.comb += self.handoff.eq(1)
                m.d.sync += [bank.eq(~bank), s["got_last"].eq(0), fresh.eq(1)]
                m.next = "ACCUM"
        with m.If(s["row_done"]):
            m.d.sync += fresh.eq(0)


class OutputLayer(wiring.Component):
    """Stage B: takes a full bank, loads ``b3`` into ``C`` output accumulators and, for each
    set hidden bit (a priority encoder over one ``L``-bit word, lowest bit first; a word costs
    ``max(1, its set bits)`` cycles), reads that unit's ``W3`` row (one memory of ``H`` words
    per class, all read at once) and adds all ``C`` weights in one cycle. Then it streams the
    ``C`` logits (``acc3 >> frac``) to the softmax.

    Members
    -------
    w3_load : In(WriteBusSignature(H, C * output_weight_bits)); b3_load : In(WriteBusSignature(1, C * output_bias_bits))
        ``W3`` and ``b3`` loads (decoded from the classifier's load bus; ``b3_load.addr`` unused).
    hb_rd : Out(bank_read_signature(cfg))
    bank : Out(1); bank_full : In(1)
        The bank this stage reads next; it holds an image's bits.
    release : Out(1)
        Every word of the bank has been taken (one cycle).
    logits : Out(stream.Signature(signed(logit_bits)))
        To the softmax, class 0 first.
    o_logits : Out(TapSignature(logit_tap_layout(logit_bits)))
    idle : Out(1)
    """

    def __init__(self, cfg: ClassifierConfig, *, w3_init: Sequence[int] = (), b3_init: Sequence[int] = ()) -> None:
        self._cfg = cfg
        self._w3_init, self._b3_init = tuple(w3_init), tuple(b3_init)
        super().__init__({
            "w3_load": In(WriteBusSignature(cfg.hidden, cfg.classes * cfg.output_weight_bits)),
            "b3_load": In(WriteBusSignature(1, cfg.classes * cfg.output_bias_bits)),
            "hb_rd": Out(bank_read_signature(cfg)),
            "bank": Out(1), "bank_full": In(1), "release": Out(1),
            "logits": Out(stream.Signature(signed(cfg.logit_bits))),
            "o_logits": Out(TapSignature(logit_tap_layout(cfg.logit_bits))),
            "idle": Out(1),
        })

    def _weights(self, m: Module):
        """``W3``: one memory per class (``H`` words), all read at the same address, so that
        each class's adder takes a whole read-data net; ``b3``: a register word."""
        cfg = self._cfg
        ld = self.w3_load
        w3_rd = []
        for c in range(cfg.classes):
            w3_mem = memory.Memory(shape=signed(cfg.output_weight_bits), depth=cfg.hidden,
                                   init=lane_init(self._w3_init, c, cfg.output_weight_bits, signed=True))
            m.submodules[f"w3_{c}"] = w3_mem
            wr = w3_mem.write_port()
            w3_rd.append(w3_mem.read_port())
            m.d.comb += [wr.addr.eq(ld.addr), wr.data.eq(ld.data.word_select(c, cfg.output_weight_bits)),
                         wr.en.eq(ld.en)]
        b3 = Signal(cfg.classes * cfg.output_bias_bits, reset_less=True,   # a parameter: survives soft reset
                    init=self._b3_init[0] if self._b3_init else 0)
        with m.If(self.b3_load.en):
            m.d.sync += b3.eq(self.b3_load.data)
        return w3_rd, b3

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        H, C, L, G, OA = cfg.hidden, cfg.classes, cfg.lanes, cfg.groups, cfg.output_acc_bits
        w3_rd, b3 = self._weights(m)
        acc3 = [Signal(signed(OA), name=f"acc3_{c}") for c in range(C)]
        hb_rd, b_bank = self.hb_rd, self.bank
        # Pipeline: B1 picks the lowest set bit of the word in cur_bits (clearing it) and
        # registers that hidden unit in h; B2 reads its W3 row (block RAM, address from a
        # register); B3 registers the row (the block RAM's clock-to-output is long); B4 adds it
        # to the C accumulators. Only B1 is a loop, and it does not pass through a memory.
        cur_bits = Signal(L)        # hidden bits of word cur_g still to add
        cur_valid = Signal()
        wptr = Signal(range(G + 1))     # the next word to load
        have = Signal()
        single = Signal()
        load = Signal()
        m.d.comb += [
            have.eq(cur_valid & cur_bits.any()),
            single.eq(_at_most_one_set(m, cur_bits, "hid_single")),
        ]
        h_next = Signal(range(H))       # the hidden unit picked in B1
        if G > 1:
            cur_g = Signal(range(G))
            if L == 1:
                m.d.comb += h_next.eq(cur_g)
            elif L & (L - 1) == 0:
                m.d.comb += h_next.eq(Cat(_lowest_set_bit(m, cur_bits, "hid_low")[:ceil_log2(L)], cur_g))
            else:
                m.d.comb += h_next.eq(cur_g * L + _lowest_set_bit(m, cur_bits, "hid_low"))
            # (as wide as wptr: a truncated operand of the bank adder is a slice in the Verilog,
            # which makes Verilator's WIDTHEXPAND fire)
            rd_word = Signal(range(G + 1))
            # The bits' memory is read combinationally at the word wptr: the read is not in
            # B1's loop (wptr is a register), and the word is there when B1 loads it.
            m.d.comb += [
                rd_word.eq(Mux(wptr == G, G - 1, wptr)),
                hb_rd.addr.eq(Mux(b_bank, G + rd_word, rd_word)),
            ]
        else:
            m.d.comb += [h_next.eq(_lowest_set_bit(m, cur_bits, "hid_low")), hb_rd.addr.eq(b_bank)]
        h = Signal(range(H))
        h_valid = Signal()
        m.d.sync += [h.eq(h_next), h_valid.eq(have)]
        m.d.comb += [p.addr.eq(h) for p in w3_rd] + [p.en.eq(h_valid) for p in w3_rd]
        s2_valid = Signal()
        s3_valid = Signal()
        w3_row = [Signal(signed(cfg.output_weight_bits), name=f"w3_row{c}") for c in range(C)]
        m.d.sync += [s2_valid.eq(h_valid), s3_valid.eq(s2_valid)]
        m.d.sync += [w3_row[c].eq(w3_rd[c].data) for c in range(C)]
        with m.If(s3_valid):
            # OA holds the worst case: the two's-complement sum never wraps.
            m.d.sync += [acc3[c].eq(acc3[c].as_unsigned() + _sign_extend(w3_row[c], OA))
                         for c in range(C)]

        lg = self.logits
        cls = Signal(range(C))
        m.d.comb += [
            # The accumulators shift down as the logits leave (see OUT): the logit is a
            # register, not a C-way multiplexer in front of the softmax's comparator.
            lg.payload.eq(acc3[0] >> cfg.output_frac),
            self.o_logits.payload.logit.eq(lg.payload),
            self.o_logits.payload.last.eq(cls == C - 1),
            self.o_logits.valid.eq(lg.valid & lg.ready),
        ]
        with m.FSM(init="IDLE", name="output_fsm"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                # The read port presents word 0 of the bank, so it is ready when RUN starts.
                with m.If(self.bank_full):
                    m.d.sync += cur_valid.eq(0)
                    m.d.sync += [acc3[c].eq(b3.word_select(c, cfg.output_bias_bits).as_signed())
                                 for c in range(C)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += load.eq((wptr != G) & (~cur_valid | single))
                with m.If(load):
                    m.d.sync += [cur_bits.eq(hb_rd.data), wptr.eq(wptr + 1), cur_valid.eq(1)]
                    if G > 1:
                        m.d.sync += cur_g.eq(wptr)
                    with m.If(wptr == G - 1):
                        # every word of the bank is in cur_bits or done: release it
                        m.d.comb += self.release.eq(1)
                        m.d.sync += b_bank.eq(~b_bank)
                with m.Elif(have):
                    m.d.sync += cur_bits.eq(cur_bits & (cur_bits - 1))
                with m.If((wptr == G) & ~have & ~h_valid & ~s2_valid & ~s3_valid):
                    # wptr = 0: the read port presents word 0 of the next bank from now on
                    m.d.sync += [cls.eq(0), wptr.eq(0)]
                    m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += lg.valid.eq(1)
                with m.If(lg.ready):
                    m.d.sync += cls.eq(Mux(cls == C - 1, 0, cls + 1))
                    m.d.sync += [acc3[c].eq(acc3[c + 1]) for c in range(C - 1)]
                    with m.If(cls == C - 1):
                        m.next = "IDLE"
        return m
