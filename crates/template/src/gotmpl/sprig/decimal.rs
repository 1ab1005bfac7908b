//! Sprig's `addf`, `add1f`, `subf`, `mulf`, `divf`: each argument goes
//! through cast's `ToFloat64`, then shopspring/decimal's `NewFromFloat`
//! (the shortest decimal that reads back as that float), exact decimal
//! arithmetic (division rounded half away from zero at 16 decimal places,
//! decimal's `DivisionPrecision`), and back to the nearest float64.

use num_bigint::{BigInt, Sign};

use super::super::funcs::CallResult;
use super::super::value::Value;
use super::numeric::to_float64;

/// decimal's `DivisionPrecision`.
const DIVISION_PRECISION: i64 = 16;

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    let op: fn(Decimal, Decimal) -> Result<Decimal, String> = match name {
        "addf" | "add1f" => |a, b| a.add(&b),
        "subf" => |a, b| a.add(&b.negate()),
        "mulf" => |a, b| Decimal::checked(a.coef * b.coef, a.exp + b.exp),
        "divf" => Decimal::div,
        _ => return None,
    };
    Some((|| {
        let (first, rest): (Value, Vec<Value>) = match name {
            "addf" => (Value::Float(0.0), args.to_vec()),
            "add1f" => {
                super::super::funcs::arity(args, 1)?;
                (args[0].clone(), vec![Value::Int(1)])
            }
            _ => {
                super::super::funcs::at_least(args, 1)?;
                (args[0].clone(), args[1..].to_vec())
            }
        };
        let mut acc = Decimal::from_f64(to_float64(&first))?;
        for value in &rest {
            acc = op(acc, Decimal::from_f64(to_float64(value))?)?;
        }
        Ok(Value::Float(acc.to_f64()))
    })())
}

/// `coef × 10^exp`.
#[derive(Debug, Clone)]
struct Decimal {
    coef: BigInt,
    exp: i64,
}

impl Decimal {
    /// decimal's `NewFromFloat`: the shortest digits that read back as `x`.
    fn from_f64(x: f64) -> Result<Decimal, String> {
        if !x.is_finite() {
            return Err("cannot make a decimal of an infinite or NaN float".into());
        }
        if x == 0.0 {
            return Ok(Decimal { coef: BigInt::from(0), exp: 0 });
        }
        // Rust's `{:e}` is the shortest round-trip form too: `-1.25e-3`.
        let text = format!("{x:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i64 = exp.parse().map_err(|_| "bad float exponent")?;
        let fraction_digits = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i64;
        let coef: BigInt = mantissa.replace('.', "").parse().map_err(|_| "bad float digits")?;
        Ok(Decimal { coef, exp: exp - fraction_digits })
    }

    /// Bounded: a chain of many `mulf` arguments would otherwise grow the
    /// digits (and the time to multiply them) without limit.
    fn checked(coef: BigInt, exp: i64) -> Result<Decimal, String> {
        if coef.bits() > 1 << 16 || exp.unsigned_abs() > 100_000 {
            return Err("decimal result too large".into());
        }
        Ok(Decimal { coef, exp })
    }

    fn negate(self) -> Decimal {
        Decimal { coef: -self.coef, exp: self.exp }
    }

    fn scaled(&self, exp: i64) -> BigInt {
        &self.coef * BigInt::from(10).pow((self.exp - exp) as u32)
    }

    fn add(&self, other: &Decimal) -> Result<Decimal, String> {
        let exp = self.exp.min(other.exp);
        if self.exp.max(other.exp) - exp > 100_000 {
            return Err("decimal result too large".into());
        }
        Decimal::checked(self.scaled(exp) + other.scaled(exp), exp)
    }

    /// decimal's `DivRound(d2, 16)`: truncated at 16 places, then one
    /// unit away from zero when the rest is at least half of it.
    fn div(self, other: Decimal) -> Result<Decimal, String> {
        if other.coef.sign() == Sign::NoSign {
            return Err("decimal division by 0".into());
        }
        let e = self.exp - other.exp + DIVISION_PRECISION;
        if e.unsigned_abs() > 100_000 {
            return Err("decimal division out of range".into());
        }
        let ten = BigInt::from(10);
        let (num, den) = if e >= 0 {
            (&self.coef * ten.pow(e as u32), other.coef.clone())
        } else {
            (self.coef.clone(), &other.coef * ten.pow((-e) as u32))
        };
        let mut q = &num / &den;
        let r = &num % &den;
        if r.magnitude() * 2u32 >= *den.magnitude() {
            if (self.coef.sign() == Sign::Minus) != (other.coef.sign() == Sign::Minus) {
                q -= 1;
            } else {
                q += 1;
            }
        }
        Decimal::checked(q, -DIVISION_PRECISION)
    }

    /// The nearest float64 (decimal's `Float64`, through big.Rat).
    fn to_f64(&self) -> f64 {
        if self.coef.sign() == Sign::NoSign {
            return 0.0;
        }
        format!("{}e{}", self.coef, self.exp).parse().unwrap_or(0.0)
    }
}
