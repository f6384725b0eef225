"""SAM architectures with random weights (the checkpoints load into these), MobileSAM's TinyViT, SDPA attention."""

from __future__ import annotations

from hub.errors import UserError


def build(arch: str, cache_dir=None):
    """An architecture-true SAM with random weights: "vit_b" | "vit_l" | "vit_h" | "vit_t" (MobileSAM) | "tiny".

    cache_dir: the hub's cache, where ultralytics (MobileSAM's encoder) keeps its settings; None outside a hub.
    """
    from functools import partial

    import torch
    from segment_anything import sam_model_registry
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    if arch in ("vit_b", "vit_l", "vit_h"):
        return sam_model_registry[arch]().eval()
    if arch == "vit_t":
        encoder = _tiny_vit(cache_dir)
        img, dim, emb, depth, mlp, heads, iou_hidden, mask_ch = 1024, 256, 64, 2, 2048, 8, 256, 16
    elif arch == "tiny":  # a few thousand parameters: a click takes milliseconds on a CPU (tests, smoke runs)
        img, dim, emb, depth, mlp, heads, iou_hidden, mask_ch = 128, 32, 8, 1, 64, 2, 32, 4
        encoder = ImageEncoderViT(img_size=img, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
                                  out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                  use_rel_pos=True, window_size=4, global_attn_indexes=(1,))
    else:
        raise UserError(f"Unknown SAM architecture {arch!r}.")
    return Sam(
        image_encoder=encoder,
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(emb, emb), input_image_size=(img, img),
                                     mask_in_chans=mask_ch),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=3,
                                 iou_head_hidden_dim=iou_hidden,
                                 transformer=TwoWayTransformer(depth=depth, embedding_dim=dim, mlp_dim=mlp,
                                                               num_heads=heads)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()


def _tiny_vit(cache_dir=None):
    """MobileSAM's TinyViT-5M image encoder (ultralytics keeps a copy with the checkpoint's parameter names)."""
    from hub.ultralytics_env import import_ultralytics

    import_ultralytics(cache_dir)  # the hub's one ultralytics configuration (settings folder, no auto-install)
    from ultralytics.models.sam.modules.tiny_encoder import TinyViT

    return TinyViT(img_size=1024, in_chans=3, num_classes=1000, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2],
                   num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, drop_rate=0.0,
                   drop_path_rate=0.0, use_checkpoint=False, mbconv_expand_ratio=4.0, local_conv_size=3,
                   layer_lr_decay=0.8)


def use_sdpa_attention(encoder) -> int:
    """Run each attention block of a segment-anything ViT encoder through `scaled_dot_product_attention`, the
    decomposed relative-position terms passed as its additive mask: the same math as the library's
    `Attention.forward` (tested equal), in fused kernels instead of a materialised, re-added, softmaxed score
    matrix. Returns how many blocks were switched (0 for other encoders, e.g. MobileSAM's TinyViT)."""
    import types

    from segment_anything.modeling.image_encoder import Attention

    n = 0
    for m in encoder.modules():
        if type(m) is Attention:
            m.forward = types.MethodType(_sdpa_attention_forward, m)
            n += 1
    return n


def _sdpa_attention_forward(self, x):
    import torch
    import torch.nn.functional as F
    from segment_anything.modeling.image_encoder import get_rel_pos

    b, h, w, _ = x.shape
    q, k, v = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    bias = None
    if self.use_rel_pos:  # add_decomposed_rel_pos's two terms, from the unscaled queries, broadcast into a mask
        r_q = q.reshape(b * self.num_heads, h, w, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, get_rel_pos(h, h, self.rel_pos_h))
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, get_rel_pos(w, w, self.rel_pos_w))
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(b, self.num_heads, h * w, h * w)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    return self.proj(out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1))
