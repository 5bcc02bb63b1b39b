/**
 * `require('vscode')` for code in node_modules (vscode-languageclient): the stub, with a
 * generic class for every API name the stub does not model, so that references such as
 * `vscode.CallHierarchyItem` or `instanceof vscode.CodeLens` do not throw.
 */
import Module from 'node:module';
import * as stub from './vscode';

const generic = new Map<string, unknown>();

export const vscodeProxy: unknown = new Proxy(stub, {
  get(target, prop) {
    if (typeof prop !== 'string') return undefined;
    if (prop in target) return (target as Record<string, unknown>)[prop];
    if (prop === '__esModule' || prop === 'then' || prop === 'default') return undefined;
    if (!generic.has(prop)) {
      // A class with the right name; `instanceof` against it is simply false.
      generic.set(prop, { [prop]: class {} }[prop]);
    }
    return generic.get(prop);
  },
});

type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
const mod = Module as unknown as { _load: Loader };
const original = mod._load;
mod._load = function (request: string, parent: unknown, isMain: boolean) {
  if (request === 'vscode') return vscodeProxy;
  return original.call(this, request, parent, isMain);
};
