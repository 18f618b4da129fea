//! Every shader variant parses and validates with naga: no GPU needed.

use wgpu_activations::{shader, Layout, Op, Storage};

#[test]
fn every_shader_variant_validates_with_naga() {
    for wg in [64, 256] {
        shader::validate_all(wg).unwrap();
    }
}

#[test]
fn every_op_has_its_wgsl_function() {
    for op in Op::elementwise_ops() {
        let (wgsl, _) = op.elementwise().unwrap();
        let f = format!("fn {wgsl}(");
        assert!(
            shader::ACTIVATIONS_WGSL.contains(&f),
            "{f} missing from activations.wgsl"
        );
        let src = shader::elementwise_source(op, Layout::Separate, 256, Storage::F32);
        assert!(src.contains(&format!("pass_nan(x, {wgsl}(x, params.p))")));
    }
}

#[test]
fn softmax_sources_pick_their_reduction() {
    let tree = shader::softmax_source(Op::Softmax, Layout::Separate, 256, Storage::F32, false);
    assert!(!tree.contains("enable subgroups") && !tree.contains("subgroupAdd"));
    let sg = shader::softmax_source(Op::Softmin, Layout::Shared, 256, Storage::F32, true);
    assert!(sg.contains("subgroupAdd"));
    assert!(sg.contains("const SIGN: f32 = -1.0;"));
    // in place: the input is read through the read-write binding
    assert!(sg.contains("dst_load(shape.in_offset"));
}

#[test]
fn half_sources_pack_two_elements_per_word() {
    for (storage, encode) in [(Storage::F16, "f32_to_f16"), (Storage::Bf16, "f32_to_bf16")] {
        let src = shader::elementwise_source(Op::Gelu, Layout::Separate, 256, storage);
        assert!(src.contains("array<atomic<u32>>"), "{storage}");
        assert!(src.contains(&format!("return {encode}(x);")), "{storage}");
        assert!(
            !src.contains("array<f32>"),
            "{storage}: no f32 tensor binding"
        );
    }
    let f32 = shader::elementwise_source(Op::Gelu, Layout::Separate, 256, Storage::F32);
    assert!(!f32.contains("atomic") && !f32.contains("f32_to_f16"));
}

#[test]
fn validation_reports_wgsl_errors() {
    let err = shader::validate_wgsl("fn f() -> f32 { return 1u; }").unwrap_err();
    assert!(err.to_string().contains("WGSL"), "{err}");
}
