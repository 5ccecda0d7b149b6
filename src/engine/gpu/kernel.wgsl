// Kernel functions shared by force.wgsl and force_rows.wgsl: the Riesz s-kernel at a squared
// softened distance, with the closed forms of src/model/kernel.rs. The host prepends this file
// (after common.wgsl) to both shaders.

// Returns +inf. The bits pass through a variable because WGSL rejects a constant expression
// that evaluates to infinity.
fn infinity() -> f32 {
    var bits = 0x7f800000u;
    return bitcast<f32>(bits);
}

// Returns the force weight w = rho^(-s-2) at the squared softened distance rho2, and 0 at
// rho2 == 0, where the force has no direction.
fn kernel_weight(rho2: f32) -> f32 {
    if rho2 <= 0.0 {
        return 0.0;
    }
    switch config.shape {
        case 0u: {
            return 1.0 / sqrt(rho2);
        }
        case 1u: {
            return 1.0 / rho2;
        }
        case 2u: {
            return 1.0 / (rho2 * sqrt(rho2));
        }
        case 3u: {
            return 1.0 / (rho2 * rho2);
        }
        default: {
            return pow(rho2, -0.5 * config.s - 1.0);
        }
    }
}

// Returns K_s(rho) at the squared softened distance rho2. At rho2 == 0 the value is 0 for s < 0
// and +inf otherwise, as in the CPU model.
fn kernel_value(rho2: f32) -> f32 {
    if rho2 <= 0.0 {
        return select(infinity(), 0.0, config.s < 0.0);
    }
    switch config.shape {
        case 0u: {
            return -sqrt(rho2);
        }
        case 1u: {
            return -0.5 * log(rho2);
        }
        case 2u: {
            return 1.0 / sqrt(rho2);
        }
        case 3u: {
            return 0.5 / rho2;
        }
        default: {
            return pow(rho2, -0.5 * config.s) / config.s;
        }
    }
}
