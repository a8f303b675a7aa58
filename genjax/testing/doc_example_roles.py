"""Which public callable of each family is a sampler, a loss, a model constructor or other.

Generated once from the names (samplers draw samples: ``*sample*``, ``generate``, MCMC
kernels and their ``*_step`` transitions; losses: ``*loss*``, ``*_d``/``*_g``, bounds,
penalties, ``*_terms``, NLLs, KLs; constructors: model classes, bijectors, analytic models,
builders and schedules), then reviewed by hand and checked in. A new public name must be
added here (``tests/shared/test_doc_examples.py`` fails until it is), and a sampler, loss or
constructor needs a ``>>>`` example in its docstring.
"""

# fmt: off
ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "counting": {
        "sampler": (
            "naive_bayes.sample", "ngram.sample_step", "ngram.sample_from_noise", "ngram.sample",
        ),
        "constructor": (
            "naive_bayes.GaussianNB", "naive_bayes.MultinomialNB", "naive_bayes.BernoulliNB",
            "ngram.NGramModel",
        ),
        "other": (
            "naive_bayes.fit_gaussian", "naive_bayes.fit_multinomial", "naive_bayes.fit_bernoulli",
            "naive_bayes.joint_log_likelihood", "naive_bayes.predict_log_proba",
            "naive_bayes.predict", "ngram.fit", "ngram.counts", "ngram.continuation_counts",
            "ngram.next_token_probs", "ngram.log_prob", "ngram.perplexity",
            "ngram_tables.count_tables", "ngram_tables.find", "ngram_tables.in_vocab",
            "ngram_tables.context_lookups",
        ),
    },
    "mixture": {
        "sampler": (
            "sample", "sample_from_noise",
        ),
        "constructor": (
            "GMMParams",
        ),
        "other": (
            "bic", "component_log_prob", "e_step", "em_step", "log_prob", "m_step", "predict",
            "predict_proba", "fit", "EMHistory", "initialize", "kmeans_plusplus",
            "kmeans_plusplus_from_noise", "params_from_centres", "random_from_noise",
            "full_covariances", "n_parameters", "precision_cholesky",
        ),
    },
    "vae": {
        "sampler": (
            "cvae_sample", "cvae_sample_from_noise", "chain_sample", "chain_sample_from_noise",
            "hvae_generate", "sample", "sample_from_noise",
        ),
        "loss": (
            "cvae_loss", "cvae_terms", "dae_loss", "kl_diag_gaussian", "hvae_terms",
            "autoencoder_loss", "elbo_loss", "elbo_terms", "iwae_bound", "iwae_loss", "vqvae_loss",
            "vqvae_terms",
        ),
        "constructor": (
            "ConditionalVAE", "class_linear_gaussian", "exact_posterior_cvae", "linear_cvae",
            "mlp_cvae", "HierarchicalVAE", "capacity_schedule", "VAE", "Autoencoder", "conv_vae",
            "exact_posterior_vae", "linear_vae", "mlp_autoencoder", "mlp_vae", "set_linear_vae",
            "VQVAE",
        ),
        "other": (
            "cvae_reconstruct", "corrupt", "corrupt_from_noise", "denoise", "denoising_errors",
            "draw_corruption_noise", "bernoulli_log_likelihood", "gaussian_log_likelihood",
            "reparameterize", "hvae_log_weights", "precision_weighted", "iwae_log_weights",
            "decoder_log_likelihood", "EMAState", "codebook_perplexity", "ema_init", "ema_update",
            "nearest_code", "reset_dead_codes", "vector_quantize", "draw_noise", "encode_mean",
            "fit_latent_gaussian", "interpolate", "noise_shapes", "reconstruct",
        ),
    },
    "gan": {
        "sampler": (
            "sample", "sample_from_noise",
            "stylegan_sample", "stylegan_noise",
        ),
        "loss": (
            "hinge_d", "hinge_g", "least_squares_d", "least_squares_g", "minimax_d", "minimax_g",
            "nonsaturating_g", "wasserstein_d", "cycle_consistency_loss", "gradient_penalty",
            "gradient_penalty_at", "r1_penalty",
            "pix2pix_d", "pix2pix_g", "l1_loss",
        ),
        "constructor": (
            "AdaIN", "DCGANDiscriminator", "DCGANGenerator", "MappingNetwork", "MLPDiscriminator",
            "MLPGenerator", "Translator", "SpectralNorm", "CycleGANTrainer", "GANTrainer",
            "cyclegan_trainer", "gan_trainer",
            "StyleGANGenerator", "StyleGANDiscriminator", "SynthesisLayer", "ToRGB",
            "UNetGenerator", "PatchGAN", "Pix2PixTrainer", "pix2pix_trainer",
        ),
        "other": (
            "adain", "pixel_norm", "critic_input_grad", "interpolate", "weight_clip",
            "SpectralVector", "power_iteration", "spectral_norm", "CycleGANInfo", "CycleGANState",
            "GANInfo", "GANState", "critic_model",
            "StyleNoise", "WAverage", "demodulated_weights", "modulated_conv", "truncate",
            "mix_styles", "track_w_avg", "generator_weights", "advance_spectral_vectors",
            "keep_buffers",
            "receptive_field", "patch_window", "Pix2PixInfo", "Pix2PixState",
        ),
    },
    "targets": {
        "constructor": (
            "GaussianMixture", "LinearGaussian", "ring", "grid", "mixture_1d",
        ),
        "other": (
            "gan_value_at_optimum", "optimal_discriminator",
        ),
    },
    "flows": {
        "sampler": (
            "cnf.sample", "cnf.sample_from_noise", "cnf.sample_and_log_prob",
            "flow_matching.sample_path",
        ),
        "loss": (
            "cnf.loss", "flow_matching.conditional_loss", "flow_matching.loss",
        ),
        "constructor": (
            "bijectors.Chain", "bijectors.Permutation", "bijectors.ConvConditioner",
            "bijectors.AdditiveCoupling", "bijectors.AffineCoupling", "bijectors.SplineCoupling",
            "bijectors.ElementwiseSpline", "bijectors.ActNorm", "bijectors.Conv1x1",
            "bijectors.Squeeze", "bijectors.MultiScale", "bijectors.AutoregressiveAffine",
            "bijectors.MAF", "bijectors.IAF", "bijectors.Planar", "bijectors.Radial",
            "cnf.mlp_field", "Flow", "nice", "realnvp", "glow", "maf", "iaf", "neural_spline",
            "planar", "radial",
        ),
        "other": (
            "bijectors.Bijector", "bijectors.Coupling", "bijectors.rational_quadratic_spline",
            "bijectors.spline_params", "cnf.SolverOptions", "cnf.TraceOptions", "cnf.Options",
            "cnf.trace_exact", "cnf.trace_hutchinson", "cnf.draw_probes", "cnf.ode_field",
            "cnf.augmented_field", "cnf.forward", "cnf.inverse", "cnf.log_prob",
            "divergence.divergence", "flow_matching.path_coefficients",
            "flow_matching.gaussian_marginal_velocity", "flow_matching.mixture_marginal_velocity",
            "ot.linear_sum_assignment", "ot.squared_distances", "ot.ot_pair",
        ),
    },
    "autoregressive": {
        "sampler": (
            "beam_search", "beam_search_cached", "generate", "generate_from_noise", "sample_token",
            "sample_token_from_noise", "speculative_generate", "pixelcnn_sample",
            "pixelcnn_sample_from_noise", "wavenet_sample", "wavenet_sample_from_noise",
        ),
        "loss": (
            "categorical_nll", "image_nll", "next_token_loss", "next_token_nll", "pixelcnn_loss",
            "wavenet_loss",
        ),
        "constructor": (
            "from_grammar", "from_json_schema", "GatedPixelCNN", "GatedPixelCNNLayer",
            "MaskedConv2d", "PixelCNN", "Transformer", "CausalConv1d", "WaveNet",
        ),
        "other": (
            "filter_logits", "min_p_filter", "speculative_verify", "speculative_verify_batch",
            "speculative_verify_from_noise", "temperature", "top_k_filter", "top_p_filter",
            "levels_to_input", "conv_mask", "quantize", "mu_law_decode", "mu_law_encode",
        ),
    },
    "nn": {
        "constructor": (
            "MADE", "MultiHeadAttention", "TransformerBlock", "ConvDecoder", "ConvEncoder",
            "MLPDecoder", "MLPEncoder", "CharTextEncoder", "ConvImageEncoder", "MLPDenoiser",
            "GaussianFourierFeatures", "MLP", "AttentionBlock", "ResBlock", "UNet",
            "DiT", "AdaLNZeroBlock", "FinalLayer",
            "VideoDiT",
            "LoRALinear", "LoRAConv", "apply_lora",
        ),
        "other": (
            "causal_mask", "dot_product_attention", "prefix_lm_mask", "FourierFrequencies",
            "sinusoidal_embedding", "made_degrees", "made_masks",
            "patchify", "unpatchify", "sincos_position_embedding_2d", "modulate",
            "tubelet_patchify", "tubelet_unpatchify", "spacetime_position_embedding",
            "spatial_attention", "temporal_attention",
            "LoRAParam", "merge_lora", "unmerge_lora", "lora_labels", "lora_optimizer",
            "lora_parameter_counts",
        ),
    },
    "energy": {
        "sampler": (
            "replay_buffer_sample", "annealed_langevin", "annealed_langevin_from_noise", "hmc",
            "hmc_from_noise", "hmc_step", "langevin", "langevin_from_noise", "langevin_step",
            "mala", "mala_from_noise", "mala_step", "metropolis_hastings",
            "metropolis_hastings_from_noise", "rwmh_step",
        ),
        "loss": (
            "cd_objective", "contrastive_divergence_loss", "denoising_score_matching_loss",
            "denoising_score_matching_terms", "exact_score_matching_loss", "ncsn_loss",
            "ncsn_terms", "persistent_contrastive_divergence_loss", "sliced_score_matching_loss",
            "sliced_score_matching_terms",
        ),
        "constructor": (
            "RBMParams", "annealed_langevin_step_sizes", "ConvEnergy", "MLPEnergy",
            "NoiseConditionalScore",
        ),
        "other": (
            "energy_log_prob", "energy_score", "cd_negatives", "replay_buffer_init",
            "replay_buffer_update", "ChainInfo", "ChainState", "LangevinInfo", "MetropolisNoise",
            "draw_noise", "hamiltonian", "init_state", "leapfrog", "mala_log_acceptance",
            "mala_proposal_log_density", "rwmh_init", "rwmh_log_acceptance", "step_noise",
        ),
    },
    "diffusion": {
        "sampler": (
            "consistency_sample", "consistency_sample_from_noise", "ddim_sample",
            "ddim_sample_from_noise", "ddim_step", "ddpm_sample", "ddpm_sample_from_noise",
            "ddpm_step", "dpm_solver_pp_sample", "dpm_solver_pp_sample_from_noise", "euler_sample",
            "euler_sample_from_noise", "euler_step", "heun_sample", "heun_sample_from_noise",
            "heun_step", "q_sample", "pf_ode_sample", "pf_ode_sample_from_noise",
            "euler_maruyama_step", "langevin_corrector_step", "pc_sample", "pc_sample_from_noise",
            "pc_step", "reverse_diffusion_step", "prior_sample",
        ),
        "loss": (
            "cd_loss", "cd_loss_from_noise", "ct_loss", "ct_loss_from_noise", "dsm_loss",
            "edm_loss", "loss", "loss_from_noise",
            "distillation_loss", "distillation_loss_from_noise",
        ),
        "constructor": (
            "AnalyticDenoiser", "AnalyticEps", "AnalyticScore", "analytic_denoiser",
            "analytic_eps_fn", "analytic_score_fn", "ConsistencyFunction", "consistency_fn",
            "consistency_model", "ct_schedule", "karras_boundaries", "ddim_timesteps",
            "GuidedModel", "LabelledModel", "guided", "with_labels", "EDMDenoiser",
            "edm_precondition", "Schedule", "cosine", "from_betas", "karras_sigmas", "linear",
            "rescale_zero_terminal_snr", "sigmoid", "VESDE", "VPSDE", "SubVPSDE",
            "EpsFromPrediction", "as_eps_model",
        ),
        "other": (
            "ddpm_noise", "consistency_scalings", "sample_indices", "dpm_solver_pp_orders",
            "eps_to_score", "eps_to_v", "eps_to_x0", "q_posterior", "score_to_eps", "v_to_eps",
            "v_to_x0", "x0_to_eps", "x0_to_v", "guided_eps_fn", "label_dropout",
            "divergence_exact", "divergence_hutchinson", "log_likelihood", "edm_coefficients",
            "min_snr_weight", "PCInfo", "SDEState", "DiscreteState", "EDMState", "StepInfo",
            "prior_log_prob", "probability_flow_drift", "reverse_drift",
            "distillation_stages", "distillation_target", "distillation_timesteps",
            "distillation_weight",
        ),
    },
    "contrastive": {
        "loss": (
            "clip_loss", "clip_loss_terms", "sharded_clip_loss", "sigmoid_loss", "clip_model_loss",
        ),
        "constructor": (
            "CLIP",
        ),
        "other": (
            "clip_logits", "clipped_logit_scale", "l2_normalize", "class_text_embeddings",
            "encode_classes", "ensemble_class_embeddings", "format_prompts",
            "image_text_similarity", "zero_shot_classify", "zero_shot_logits", "zero_shot_predict",
        ),
    },
    "composites": {
        "sampler": (
            "encode_latents", "flow_posterior_sample", "flow_posterior_sample_from_noise",
        ),
        "loss": (
            "text_to_image_loss", "flow_elbo_loss", "flow_elbo_terms", "flow_iwae_bound",
        ),
        "constructor": (
            "LatentDiffusion", "ContextModel", "GuidedContextModel", "CodePrior",
            "PatchDiscriminator", "FlowPosteriorVAE", "ContextMADE", "mlp_flow_vae",
            "affine_flow_vae",
        ),
        "other": (
            "caption_dropout", "guided_context_eps_fn", "text_context", "flow_log_weights",
            "context_made_degrees",
        ),
    },
    "metrics": {
        "other": (
            "mmd", "energy_distance", "sliced_wasserstein", "sliced_wasserstein_with_directions",
            "mode_coverage", "occupancy_kl", "bits_per_dim", "frechet_distance",
            "frechet_distance_gaussian",
        ),
    },
    "ode": {
        "other": (
            "ButcherTableau", "RKState", "RKInfo", "rk_init", "rk_step", "solve",
        ),
    },
    "data": {
        "other": (
            "load_labels", "load_with_labels", "text_vocabulary", "encode_text", "decode_text",
            "corpus_text", "load_idx", "load_text", "load", "batch_indices", "iterate_batches",
        ),
    },
}
# fmt: on
