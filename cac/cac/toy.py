"""The CPU mini reproduction's world: coloured squares, a tiny text-to-image diffusion model, a colour detector.

Images are ``size x size`` RGB on a grey background with one or two squares of distinct colours; captions name
the colours and never a location ("a red square and a blue square"). The denoiser is a small pixel-space
transformer whose only text pathway is diffusers ``Attention`` cross-attention (``BasicTransformerBlock.attn2``),
so ``CACAttnProcessor`` plugs in exactly as in Stable Diffusion; the text encoder is a tiny ``CLIPTextModel``
over CLIP's real tokenizer. ``ToyPipeline`` mirrors the diffusers pipeline API that ``apply_cac`` and
``multidiffusion`` use (``encode_prompt``, ``prepare_latents``, ``__call__`` with ``prompt_embeds``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn

PALETTE = {  # RGB in [-1, 1]; grey background is 0
    "red": (1.0, -1.0, -1.0),
    "green": (-1.0, 1.0, -1.0),
    "blue": (-1.0, -1.0, 1.0),
    "yellow": (1.0, 1.0, -1.0),
}
COLOURS = list(PALETTE)


@dataclass
class ToyConfig:
    """Sizes of the mini's world and denoiser."""

    size: int = 10  # image side (pixels)
    obj: int = 3  # square side (pixels)
    hidden: int = 64  # transformer width
    layers: int = 2  # transformer blocks (self-attn, cross-attn, MLP)
    heads: int = 4  # attention heads
    text_dim: int = 32  # text encoder width = cross-attention dim
    max_tokens: int = 12  # CLIP tokens per prompt (SOT ... EOT, padded)


def caption(colours: list[str]) -> str:
    """The global caption: colours only, no location words."""
    return " and ".join(f"a {c} square" for c in colours)


def sample_scenes(n: int, arch: ToyConfig, gen: torch.Generator, max_objects: int = 2):
    """``n`` random scenes: images ``[n, 3, S, S]`` in [-1, 1], captions, and the squares' colours and top-left."""
    s, o = arch.size, arch.obj
    k = torch.randint(1, max_objects + 1, (n,), generator=gen)
    perm = torch.argsort(torch.rand(n, len(COLOURS), generator=gen), dim=1)[:, :max_objects]
    pos = torch.randint(0, s - o + 1, (n, max_objects, 2), generator=gen)
    pal = torch.tensor([PALETTE[c] for c in COLOURS])
    img = torch.zeros(n, 3, s, s)
    ys, xs = torch.arange(s)[None, :], torch.arange(s)[None, :]
    for j in range(max_objects):  # two objects at most: a loop over object slots, not over pixels
        on = (k > j)[:, None, None]
        inside = ((ys >= pos[:, j, :1]) & (ys < pos[:, j, :1] + o))[:, :, None] & (
            (xs >= pos[:, j, 1:]) & (xs < pos[:, j, 1:] + o))[:, None, :]
        m = (inside & on)[:, None]
        img = torch.where(m, pal[perm[:, j]][:, :, None, None], img)
    colours = [[COLOURS[perm[i, j]] for j in range(int(k[i]))] for i in range(n)]
    return img, [caption(c) for c in colours], colours, pos


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([a.sin(), a.cos()], dim=-1)


class ToyDenoiser(nn.Module):
    """eps-prediction transformer on pixels: 3x3 conv stem, learned positions, timestep embedding, diffusers
    ``BasicTransformerBlock``s (self-attention, cross-attention to text, MLP), 3x3 conv head."""

    def __init__(self, arch: ToyConfig):
        super().__init__()
        from diffusers.models.attention import BasicTransformerBlock

        self.arch = arch
        self.config = SimpleNamespace(in_channels=3, sample_size=arch.size, time_cond_proj_dim=None)
        h = arch.hidden
        self.stem = nn.Conv2d(3, h, 3, padding=1)
        self.pos = nn.Parameter(torch.randn(1, arch.size * arch.size, h) * 0.02)
        self.time = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h))
        self.blocks = nn.ModuleList(
            BasicTransformerBlock(h, arch.heads, h // arch.heads, cross_attention_dim=arch.text_dim,
                                  activation_fn="gelu", ff_inner_dim=2 * h)
            for _ in range(arch.layers)
        )
        self.norm = nn.LayerNorm(h)
        self.head = nn.Conv2d(h, 3, 3, padding=1)

    @property
    def dtype(self):
        return self.stem.weight.dtype

    def forward(self, sample, timestep, encoder_hidden_states, return_dict: bool = True):
        b, _, s, _ = sample.shape
        t = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(b)
        x = self.stem(sample).flatten(2).transpose(1, 2) + self.pos
        x = x + self.time(_timestep_embedding(t, self.arch.hidden))[:, None]
        for blk in self.blocks:
            x = blk(x, encoder_hidden_states=encoder_hidden_states)
        x = self.norm(x).transpose(1, 2).reshape(b, -1, s, s)
        out = self.head(x)
        return SimpleNamespace(sample=out) if return_dict else (out,)


def text_encoder(arch: ToyConfig):
    """A 2-layer ``CLIPTextModel`` over CLIP's vocabulary, trained with the denoiser."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=arch.text_dim, intermediate_size=2 * arch.text_dim, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=arch.max_tokens, bos_token_id=49406, eos_token_id=49407,
        pad_token_id=49407,
    ))


def noise_scheduler():
    """Training schedule (DDPM, 1000 steps, cosine betas) and its DDIM sampler twin."""
    from diffusers import DDIMScheduler, DDPMScheduler

    kw = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True, prediction_type="epsilon")
    return DDPMScheduler(**kw), DDIMScheduler(**kw, set_alpha_to_one=True)


class ToyPipeline:
    """The diffusers pipeline API that ``apply_cac``/``multidiffusion`` need, for the pixel-space toy model."""

    vae_scale_factor = 1
    vae = None

    def __init__(self, unet: ToyDenoiser, text_encoder, tokenizer, scheduler):
        self.unet, self.text_encoder, self.tokenizer, self.scheduler = unet, text_encoder, tokenizer, scheduler

    @property
    def _execution_device(self):
        return self.unet.pos.device

    def encode_prompt(self, prompt, device, num_images_per_prompt, do_classifier_free_guidance, negative_prompt=None,
                      prompt_embeds=None, negative_prompt_embeds=None, **_):
        """Same contract as ``StableDiffusionPipeline.encode_prompt``: ``(prompt_embeds, negative_prompt_embeds)``."""
        def enc(texts):
            ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids.to(device)
            return self.text_encoder(ids)[0]

        prompts = [prompt] if isinstance(prompt, str) else list(prompt or [])
        pe = prompt_embeds if prompt_embeds is not None else enc(prompts)
        ne = None
        if do_classifier_free_guidance:
            neg = negative_prompt if negative_prompt is not None else [""] * pe.shape[0]
            neg = [neg] * pe.shape[0] if isinstance(neg, str) else list(neg)
            ne = negative_prompt_embeds if negative_prompt_embeds is not None else enc(neg)
            ne = ne.repeat_interleave(num_images_per_prompt, 0)
        return pe.repeat_interleave(num_images_per_prompt, 0), ne

    def prepare_latents(self, batch_size, num_channels, height, width, dtype, device, generator, latents=None):
        if latents is None:
            latents = torch.randn((batch_size, num_channels, height, width), generator=generator, dtype=dtype)
        return latents.to(device) * self.scheduler.init_noise_sigma

    def prepare_extra_step_kwargs(self, generator, eta):
        return {"eta": eta, "generator": generator}

    def decode_latents_to_images(self, latents, output_type="pt"):
        """Pixel space: the latents are the image; returns ``[B, 3, S, S]`` in [0, 1]."""
        return SimpleNamespace(images=((latents.clamp(-1, 1) + 1) / 2).cpu())

    @torch.no_grad()
    def __call__(self, prompt=None, height=None, width=None, num_inference_steps=25, guidance_scale=3.0,
                 num_images_per_prompt=1, generator=None, latents=None, prompt_embeds=None, negative_prompt_embeds=None,
                 negative_prompt=None, eta=0.0, output_type="pt"):
        device = self._execution_device
        do_cfg = guidance_scale > 1
        pe, ne = self.encode_prompt(prompt, device, num_images_per_prompt, do_cfg, negative_prompt, prompt_embeds,
                                    negative_prompt_embeds)
        s = self.unet.arch.size
        if (height or s) != s or (width or s) != s:
            raise ValueError(f"the toy model generates {s}x{s} images")
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        x = self.prepare_latents(pe.shape[0], 3, s, s, pe.dtype, device, generator, latents)
        extra = self.prepare_extra_step_kwargs(generator, eta)
        for t in self.scheduler.timesteps:
            xin = self.scheduler.scale_model_input(x, t)
            if do_cfg:
                eu, ec = self.unet(torch.cat([xin, xin]), t, torch.cat([ne, pe])).sample.chunk(2)
                eps = eu + guidance_scale * (ec - eu)
            else:
                eps = self.unet(xin, t, pe).sample
            x = self.scheduler.step(eps, t, x, **extra, return_dict=False)[0]
        return self.decode_latents_to_images(x, output_type)

    def save(self, path: str | Path) -> None:
        """Weights (safetensors), sizes (json) and the tokenizer, in one folder."""
        from safetensors.torch import save_file

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        save_file(self.unet.state_dict(), str(p / "denoiser.safetensors"))
        self.text_encoder.save_pretrained(p / "text_encoder")
        self.tokenizer.save_pretrained(p / "tokenizer")
        (p / "toy_config.json").write_text(json.dumps(asdict(self.unet.arch), indent=1))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ToyPipeline:
        """Load a folder written by ``save``; a missing folder names the command that makes it."""
        from safetensors.torch import load_file
        from transformers import CLIPTextModel, CLIPTokenizer

        p = Path(path)
        if not (p / "denoiser.safetensors").exists():
            raise FileNotFoundError(f"no toy model at {p}; train it with `make -C cac toy`")
        arch = ToyConfig(**json.loads((p / "toy_config.json").read_text()))
        unet = ToyDenoiser(arch)
        unet.load_state_dict(load_file(str(p / "denoiser.safetensors")))
        te = CLIPTextModel.from_pretrained(str(p / "text_encoder"))
        tok = CLIPTokenizer.from_pretrained(str(p / "tokenizer"))
        return cls(unet.to(device).eval(), te.to(device).eval(), tok, noise_scheduler()[1])


def detect_colour(images: torch.Tensor, colour: str, tol: float = 0.3) -> torch.Tensor:
    """Pixels of ``images`` ``[B, 3, S, S]`` (in [0, 1]) within ``tol`` (per channel, [0, 1] units) of ``colour``:
    a boolean map ``[B, S, S]``. The mini's "detector"."""
    ref = (torch.tensor(PALETTE[colour], device=images.device) + 1) / 2
    return ((images - ref[None, :, None, None]).abs() <= tol).all(dim=1)


def placement(images: torch.Tensor, colours: list[str], boxes: torch.Tensor,
              min_pixels: int = 2) -> dict[str, np.ndarray]:
    """Per requested object (image b asks for ``colours[b]`` in pixel box ``boxes[b]`` xyxy): whether the colour is
    present (>= ``min_pixels``), whether its mass centroid lies in the box, its IoU with the box and the share of
    its mass inside the box (0 when absent)."""
    s = images.shape[-1]
    det = torch.stack([detect_colour(images[i:i + 1], c)[0] for i, c in enumerate(colours)]).float()  # [B, S, S]
    ys = torch.arange(s).float() + 0.5
    mass = det.sum((1, 2))
    cy = (det.sum(2) * ys).sum(1) / mass.clamp_min(1)
    cx = (det.sum(1) * ys).sum(1) / mass.clamp_min(1)
    b = boxes.float()
    present = mass >= min_pixels
    inside = present & (cx >= b[:, 0]) & (cx <= b[:, 2]) & (cy >= b[:, 1]) & (cy <= b[:, 3])
    boxm = ((ys[None, :, None] >= b[:, 1, None, None]) & (ys[None, :, None] < b[:, 3, None, None])
            & (ys[None, None, :] >= b[:, 0, None, None]) & (ys[None, None, :] < b[:, 2, None, None])).float()
    inter = (det * boxm).sum((1, 2))
    iou = inter / (det + boxm - det * boxm).sum((1, 2)).clamp_min(1)
    mass_in = torch.where(present, inter / mass.clamp_min(1), torch.zeros_like(inter))
    return {"present": present.numpy(), "in_box": inside.numpy(), "iou": iou.numpy(), "mass_in_box": mass_in.numpy()}


def train_toy(out_dir: str | Path, arch: ToyConfig | None = None, steps: int = 3000, batch_size: int = 128,
              lr: float = 1e-3, caption_dropout: float = 0.1, seed: int = 0, ckpt_every: int = 500,
              progress: bool = True, log=None) -> ToyPipeline:
    """Train the toy text-to-image model (eps-prediction DDPM loss) and save it to ``out_dir``.

    Data is drawn fresh every step (``sample_scenes``); captions are dropped to "" with ``caption_dropout`` so
    classifier-free guidance works. A checkpoint (model, optimiser, RNG, step) every ``ckpt_every`` steps makes
    a killed run resume where it stopped; ``log(step, metrics)`` receives the loss every step.
    """
    from tqdm.auto import tqdm

    from cac.tokenizer import clip_tokenizer
    from shared.checkpoint import load_state, save_state

    arch = arch or ToyConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = clip_tokenizer(out / "tokenizer_src", model_max_length=arch.max_tokens)
    unet, te = ToyDenoiser(arch), text_encoder(arch)
    train_sched, sample_sched = noise_scheduler()
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    lr_at = lambda s: lr * min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))  # noqa: E731
    gen = torch.Generator().manual_seed(seed)
    ckpt = out / "checkpoint.pt"
    start = load_state(ckpt, gen, unet=unet, text_encoder=te, opt=opt)
    acp = train_sched.alphas_cumprod
    pipe = ToyPipeline(unet, te, tok, sample_sched)
    bar = tqdm(range(start, steps), disable=not progress, desc="train toy", initial=start, total=steps)
    for step in bar:
        x0, caps, _, _ = sample_scenes(batch_size, arch, gen)
        drop = torch.rand(batch_size, generator=gen) < caption_dropout
        caps = ["" if d else c for c, d in zip(caps, drop.tolist())]
        t = torch.randint(0, train_sched.config.num_train_timesteps, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        ids = tok(caps, padding="max_length", max_length=arch.max_tokens, truncation=True,
                  return_tensors="pt").input_ids
        loss = nn.functional.mse_loss(unet(xt, t, te(ids)[0]).sample, noise)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if log is not None:
            log(step, {"train/loss": loss.item(), "train/lr": lr_at(step)})
        if (step + 1) % ckpt_every == 0 and step + 1 < steps:
            save_state(ckpt, step + 1, gen, unet=unet, text_encoder=te, opt=opt)
    unet.eval()
    te.eval()
    pipe.save(out)
    ckpt.unlink(missing_ok=True)
    return pipe
