"""safety stage (see DESIGN.md): every output marked as synthetic, and `facetalk verify`.

    marks = Marks.new()                 # marks.py: per output (a live stream session, say)
    frame = marks.apply(frame)          # per frame: label (if asked) + invisible watermark

watermark.py embeds (Watermarker), detect.py finds, pattern.py is the keyed tile, payload.py the
version + id with CRC and convolutional code, provenance.py the MP4 tags, label.py the visible
tag, verify.py the verdict, attacks.py the robustness suite's attacks.
"""
