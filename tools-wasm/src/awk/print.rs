//! The print and printf statements: OFS, ORS and OFMT applied, output to standard output or to
//! the redirection's file (through `io::Outputs`).
//!
//! Must not: open anything itself; `io` owns the streams.

use super::ast::{self, Expr, Redirect};
use super::interp::{Ex, Interp};

impl Interp<'_> {
    pub(super) fn print_record(&mut self) -> Ex<()> {
        let line = format!("{}{}", self.record.text(), self.gstr(ast::ORS));
        self.out.write(None, &line)?;
        Ok(())
    }

    fn destination(&mut self, dest: Option<&(Redirect, Expr)>) -> Ex<Option<(Redirect, String)>> {
        Ok(match dest {
            Some((mode, e)) => Some((*mode, self.eval(e)?.string(&self.convfmt()))),
            None => None,
        })
    }

    pub(super) fn print(&mut self, args: &[Expr], dest: Option<&(Redirect, Expr)>) -> Ex<()> {
        let mut line = String::new();
        if args.is_empty() {
            line.push_str(self.record.text());
        } else {
            let ofs = self.gstr(ast::OFS);
            let ofmt = self.gstr(ast::OFMT);
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    line.push_str(&ofs);
                }
                let v = self.eval(a)?;
                line.push_str(&v.string(&ofmt));
            }
        }
        line.push_str(&self.gstr(ast::ORS));
        let dest = self.destination(dest)?;
        self.out
            .write(dest.as_ref().map(|(m, n)| (*m, n.as_str())), &line)?;
        Ok(())
    }

    pub(super) fn printf(&mut self, args: &[Expr], dest: Option<&(Redirect, Expr)>) -> Ex<()> {
        let text = self.sprintf(args)?;
        let dest = self.destination(dest)?;
        self.out
            .write(dest.as_ref().map(|(m, n)| (*m, n.as_str())), &text)?;
        Ok(())
    }
}
