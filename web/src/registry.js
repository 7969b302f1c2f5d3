// Page scripts register here; app.js runs the one named by <body data-page>.
const pages = {};

export function registerPage(name, fn) {
  pages[name] = fn;
}

export function runPage(name, root) {
  if (name && pages[name]) pages[name](root);
}
