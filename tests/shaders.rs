//! Every shader variant parses and validates with naga: no GPU needed.

use wgpu_activations::{shader, Layout, Op};

#[test]
fn every_elementwise_variant_validates_with_naga() {
    for wg in [64, 256] {
        shader::validate_all(wg).unwrap();
    }
}

#[test]
fn every_op_has_its_wgsl_function() {
    for &op in Op::ALL {
        let f = format!("fn {}(", op.info().wgsl);
        assert!(
            shader::ACTIVATIONS_WGSL.contains(&f),
            "{} missing from activations.wgsl",
            f
        );
        let src = shader::elementwise_source(op, Layout::Separate, 256);
        assert!(src.contains(&format!("pass_nan(x, {}(x, params.p))", op.info().wgsl)));
    }
}

#[test]
fn validation_reports_wgsl_errors() {
    let err = shader::validate_wgsl("fn f() -> f32 { return 1u; }").unwrap_err();
    assert!(err.to_string().contains("WGSL"), "{err}");
}
