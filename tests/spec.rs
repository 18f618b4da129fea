//! The spec grammar: round trips for every op, and errors that say what is wrong.

use wgpu_activations::{Activation, Error, Op};

fn default_of(op: Op) -> Activation {
    Activation::example(op)
}

#[test]
fn every_op_round_trips_through_its_spec() {
    for &op in Op::ALL {
        let a = default_of(op);
        let text = a.to_string();
        let back: Activation = text.parse().unwrap();
        assert_eq!(back, a, "{text}");
        // With every parameter changed, too.
        if !a.params().is_empty() {
            // (+1 keeps an integer parameter such as softmax's `dim` an integer)
            let changed: Vec<f32> = a.params().iter().map(|p| p + 1.0).collect();
            let b = Activation::from_params(op, &changed).unwrap();
            let back: Activation = b.to_string().parse().unwrap();
            assert_eq!(back, b, "{b}");
        }
    }
}

#[test]
fn specs_parse_with_spaces_aliases_and_word_values() {
    let a: Activation = " leaky_relu( negative_slope = 0.2 ) ".parse().unwrap();
    assert_eq!(a.param("negative_slope"), Some(0.2));
    assert_eq!(
        "gelu(approximate=tanh)".parse::<Activation>().unwrap().op(),
        Op::GeluTanh
    );
    assert_eq!(
        "gelu(approximate=none)".parse::<Activation>().unwrap().op(),
        Op::Gelu
    );
    assert_eq!("gelu()".parse::<Activation>().unwrap().op(), Op::Gelu);
    assert_eq!(
        "hard_swish".parse::<Activation>().unwrap().to_string(),
        "hardswish"
    );
    assert_eq!(
        "softplus(beta=2)"
            .parse::<Activation>()
            .unwrap()
            .to_string(),
        "softplus(beta=2)"
    );
    assert_eq!(
        Activation::new(Op::GeluTanh).unwrap().to_string(),
        "gelu(approximate=tanh)"
    );
}

fn reason(spec: &str) -> String {
    match spec.parse::<Activation>() {
        Err(Error::Spec { reason, .. }) => reason,
        other => panic!("{spec}: expected a spec error, got {other:?}"),
    }
}

#[test]
fn bad_specs_say_what_is_wrong() {
    assert!(
        reason("gleu").contains("did you mean `gelu`"),
        "{}",
        reason("gleu")
    );
    assert!(reason("leaky_rlu").contains("`leaky_relu`"));
    assert!(reason("softmaxx_zz_q").contains("unknown activation"));
    assert!(reason("").contains("empty"));
    assert!(reason("relu(").contains("`)`"));
    assert!(reason("elu(alpha=1))").contains("parentheses"));
    assert!(reason("elu(beta=1)").contains("takes alpha"));
    assert!(reason("relu(x=1)").contains("takes no parameters"));
    assert!(reason("elu(alpha)").contains("KEY=VALUE"));
    assert!(reason("elu(alpha=)").contains("missing value"));
    assert!(reason("elu(alpha=big)").contains("must be a number"));
    assert!(reason("elu(alpha=1, alpha=2)").contains("twice"));
    assert!(reason("elu(alpha=inf)").contains("finite"));
    assert!(reason("threshold(threshold=1)").contains("`value` is required"));
    assert!(reason("gelu(approximate=fast)").contains("none, tanh"));
    assert!(reason("softplus(beta=0)").contains("beta divides"));
    assert!(reason("celu(alpha=8.4e34)").contains("alpha divides"));
    assert!(reason("celu(alpha=1e-35)").contains("2^-100"));
    assert!(reason("hardtanh(min_val=2, max_val=1)").contains("must not exceed"));
    assert!(reason("softshrink(lambd=-1)").contains(">= 0"));
    let e = "gleu".parse::<Activation>().unwrap_err().to_string();
    assert!(e.contains("`gleu`"), "{e}");
}

#[test]
fn builder_methods_validate_too() {
    let a = Activation::new(Op::Elu).unwrap();
    assert_eq!(a.with("alpha", 2.0).unwrap().param("alpha"), Some(2.0));
    assert!(a.with("beta", 2.0).is_err());
    assert!(a.with("alpha", f32::NAN).is_err());
    assert!(Activation::new(Op::Threshold).is_err());
    assert!(Activation::from_params(Op::Elu, &[]).is_err());
    assert!(a.has_default_params());
    assert!(!a.with("alpha", 2.0).unwrap().has_default_params());
}
